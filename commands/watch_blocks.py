"""Block Kit for the QuickBooks watch: a change that left the portal differing (the check,
with its cause, evidence and buttons) and a payment collision caught before the portal's
transfer runs. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from commands.blocks import Message, check_message, context, section
from commands.followup_text import still_to_account
from commands.format import escape, fmt_day, fmt_moment, fmt_money, fmt_when
from services.comparison import Comparison
from services.followups import FollowUp
from services.watch import Collision

COLLISION_STEPS = (
    "Delete the payment entered by hand in QuickBooks Online (or unapply it from the "
    "invoice), and let the portal's transfer post the client's payment; or",
    "cancel the portal's transfer, if the payment recorded in QuickBooks is the one to keep.",
)


def change_alert(
    comparison: Comparison,
    *,
    reason: str,
    now: datetime,
    full_resync_since: date,
    grace: timedelta,
    waited: timedelta,
    followups: Sequence[FollowUp] = (),
) -> Message:
    """A change in QuickBooks the portal still does not show after the grace: the check
    (cause, evidence, money still to account for, only the buttons that help) under one
    line saying what happened. ``waited``: from the last change to this re-check (less
    than ``grace`` only when changes kept coming)."""
    check = check_message(
        comparison, now=now, full_resync_since=full_resync_since, followups=followups
    )
    acct = comparison.accounting
    synced = ", once the portal had had time to sync" if waited >= grace else ""
    head = section(
        f":eyes: *QuickBooks changed and the portal still differs*\n"
        f"{escape(reason)} on {fmt_when(acct.last_updated if acct else None, now=now)}; "
        f"re-checked {_span(waited)} after the last change{synced}."
    )
    footer = context(f"Watched {fmt_moment(now)} (updated in place as it changes)")
    return Message(text=f"Watch: {check.text}", blocks=[head, *check.blocks[:-1], footer])


def _span(waited: timedelta) -> str:
    seconds = round(max(waited.total_seconds(), 0))
    return f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"


def resolved_alert(number: str, *, now: datetime, followups: Sequence[FollowUp] = ()) -> Message:
    """The invoice an alert was about now agrees on both sides; with money a resync took
    out of view still to account for, it says so (the balances matching is not the end)."""
    footer = context(f"Re-checked {fmt_moment(now)}")
    if followups:
        owed = still_to_account(followups)
        return Message(
            text=f"Invoice {number}: balances match; {owed}.",
            blocks=[
                section(f":warning: *Invoice {escape(number)}*: balances match; {owed}."),
                footer,
            ],
        )
    return Message(
        text=f"Invoice {number}: the balances agree again.",
        blocks=[
            section(
                f":white_check_mark: *Invoice {escape(number)}*: QuickBooks Online and the "
                "portal agree again."
            ),
            footer,
        ],
    )


def collision_message(collision: Collision, *, now: datetime) -> Message:
    """Two records of one payment, before the portal's transfer fails as a duplicate."""
    portal, qbo = collision.portal, collision.qbo
    number = escape(collision.invoice_number)
    portal_line = (
        f"*Portal payment* {escape(portal.reference)}: {fmt_money(portal.amount, portal.currency)}"
        f" paid by the client on {fmt_moment(portal.paid_at)}, *pending transfer* to "
        "QuickBooks"
    )
    who = f" by {escape(collision.recorded_by)}" if collision.recorded_by else ""
    ref = f" (ref {escape(qbo.reference)})" if qbo.reference else ""
    qbo_line = (
        f"*QuickBooks payment* Id {escape(qbo.id)}{ref}: {fmt_money(qbo.total)} recorded by "
        f"hand{who}" + (f", from {escape(qbo.customer_name)}" if qbo.customer_name else "")
    )
    steps = "\n".join(f"{i}. {step}" for i, step in enumerate(COLLISION_STEPS, 1))
    text = (
        f"Payment collision on invoice {collision.invoice_number}: portal payment "
        f"{portal.reference} is pending transfer and QuickBooks payment {qbo.id} was "
        "recorded by hand for the same money."
    )
    blocks = [
        section(
            f":warning: *Payment collision on invoice {number}*: the same money is being "
            f"recorded twice ({escape(collision.matched)})."
        ),
        section(f"{portal_line}\n{qbo_line}"),
        section(
            "When the portal's transfer runs, QuickBooks will refuse it as a duplicate or take "
            f"the money twice. *Before it runs:*\n{steps}"
        ),
        context(f"Caught {fmt_moment(now)}, before the portal's transfer"),
    ]
    return Message(text=text, blocks=blocks)


CATCH_UP = "The next digest compares every open invoice; run `/invoice digest` to have it now."


def cdc_too_old(since: datetime, *, days: int) -> Message:
    """The watch lost track for longer than QuickBooks' Change Data Capture reaches."""
    return _notice(
        f"I lost track of QuickBooks Online changes since {fmt_day(since)}, more than {days} "
        f"days ago, which is as far back as QuickBooks can list them. {CATCH_UP}"
    )


def cdc_cut_short(since: datetime, entities: Sequence[str]) -> Message:
    """A catch-up QuickBooks answered only in part (more changes than it lists at once)."""
    return _notice(
        f"QuickBooks Online changed more {' and '.join(entities)} records since "
        f"{fmt_moment(since)} than it lists at once; I am re-checking the ones it listed. "
        f"{CATCH_UP}"
    )


def _notice(text: str) -> Message:
    return Message(
        text=text, blocks=[section(f":hourglass: {text}"), context("The QuickBooks watch")]
    )
