"""Block Kit for the QuickBooks watch: a change that left the portal differing (the check,
with its cause, evidence and buttons) and a payment collision caught before the portal's
transfer runs. Pure."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from commands.blocks import Message, check_message, context, section
from commands.format import escape, fmt_money, fmt_when
from services.models import Comparison
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
) -> Message:
    """A change in QuickBooks the portal still does not show after the grace: the check
    (cause, evidence, only the buttons that help) under one line saying what happened."""
    check = check_message(comparison, now=now, full_resync_since=full_resync_since)
    head = section(
        f":eyes: *QuickBooks changed and the portal still differs*\n"
        f"{escape(reason)} on {fmt_when(comparison.accounting.last_updated if comparison.accounting else None, now=now)}; "
        f"re-checked {_span(grace)} later, once the portal had had time to sync."
    )
    footer = context(f"Watched {now:%b %d, %H:%M} UTC (updated in place as it changes)")
    return Message(text=f"Watch: {check.text}", blocks=[head, *check.blocks[:-1], footer])


def _span(grace: timedelta) -> str:
    seconds = grace.total_seconds()
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:g} min"


def resolved_alert(number: str, *, now: datetime) -> Message:
    """The invoice an alert was about now agrees on both sides."""
    return Message(
        text=f"Invoice {number}: the balances agree again.",
        blocks=[
            section(
                f":white_check_mark: *Invoice {escape(number)}*: QuickBooks Online and the "
                "portal agree again."
            ),
            context(f"Re-checked {now:%b %d, %H:%M} UTC"),
        ],
    )


def collision_message(collision: Collision, *, now: datetime) -> Message:
    """Two records of one payment, before the portal's transfer fails as a duplicate."""
    portal, qbo = collision.portal, collision.qbo
    number = escape(collision.invoice_number)
    portal_line = (
        f"*Portal payment* {escape(portal.reference)}: {fmt_money(portal.amount, portal.currency)}"
        f" paid by the client on {portal.paid_at:%b %d, %H:%M} UTC, *pending transfer* to "
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
        context(f"Caught {now:%b %d, %H:%M} UTC, before the portal's transfer"),
    ]
    return Message(text=text, blocks=blocks)
