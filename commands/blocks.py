"""Block Kit builders: pure functions from domain results to Slack messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from commands.actions import ActionId, ButtonState
from commands.cause_blocks import (
    CAUSE_TITLES,
    cause_blocks,
    fix_first_confirm,
    resync_anyway_button,
)
from commands.fix_blocks import offers_fix, owed_fix_blocks, prepare_fix_button
from commands.followup_text import accounted_buttons, followups_text, still_to_account
from commands.format import fmt_clock, fmt_moment, fmt_money, fmt_when
from commands.parse import USAGE
from services.causes import Action, Diagnosis
from services.comparison import Comparison, Verdict
from services.followups import PAYMENTS as PAYMENT_RISKS
from services.followups import FollowUp

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150


@dataclass(frozen=True)
class Message:
    """A Slack message: fallback text (notifications, screen readers) and blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        assert len(self.blocks) <= MAX_BLOCKS
        return {"text": self.text, "blocks": [b.to_dict() for b in self.blocks]}


def mrkdwn(text: str) -> MarkdownTextObject:
    if len(text) > MAX_SECTION:
        text = text[: MAX_SECTION - 1] + "…"
    return MarkdownTextObject(text=text)


def section(text: str) -> SectionBlock:
    return SectionBlock(text=mrkdwn(text))


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[mrkdwn(text)])


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=text if len(text) <= MAX_HEADER else text[: MAX_HEADER - 1] + "…")


def usage_message(problem: str | None = None) -> Message:
    lead = f"{problem}\n\n" if problem else ""
    return Message(text=(problem or "Usage"), blocks=[section(lead + USAGE)])


def help_message() -> Message:
    intro = (
        "I compare invoice balances between QuickBooks Online and the billing portal, "
        "and fix the portal when it is stale."
    )
    return Message(text="Invoice Resync Bot help", blocks=[section(intro), section(USAGE)])


def wait_message(system: str, until: datetime) -> Message:
    """A throttled request waits: who asked, and when the bot asks again."""
    who = "QuickBooks" if system.startswith("QuickBooks") else f"The {system}"
    text = f"{who} asked us to slow down; retrying at {fmt_clock(until)}."
    return Message(text=text, blocks=[context(f":hourglass_flowing_sand: {text}")])


def error_message(text: str, *, reference: str | None = None) -> Message:
    body = f":warning: {text}"
    if reference:
        body += f"\nReference: `{reference}`"
    return Message(text=text, blocks=[section(body)])


def verdict_line(comparison: Comparison, followups: Sequence[FollowUp] = ()) -> str:
    acct, portal = comparison.accounting, comparison.portal
    currency = acct.currency if acct else portal.currency if portal else None
    if followups and comparison.verdict in (Verdict.IN_SYNC, Verdict.ROUNDING):
        return f":warning: *Balances match*; {still_to_account(followups)}."
    match comparison.verdict:
        case Verdict.IN_SYNC:
            return ":white_check_mark: *In sync*: both sides agree."
        case Verdict.MISMATCH:
            assert comparison.difference is not None and acct and portal
            return (
                f":red_circle: *Out of sync by {fmt_money(abs(comparison.difference), currency)}*: "
                f"the portal shows {fmt_money(portal.balance, currency)}, "
                f"QuickBooks Online {fmt_money(acct.balance, currency)}."
            )
        case Verdict.MISSING_IN_PORTAL:
            return (
                ":warning: *Missing in the portal*: QuickBooks Online has it, the portal does not."
            )
        case Verdict.MISSING_IN_ACCOUNTING:
            return (
                ":warning: *Missing in QuickBooks Online*: the portal has it, QuickBooks does not "
                "(deleted or voided there?). A resync cannot fix this."
            )
        case Verdict.NOT_FOUND:
            return f"Invoice {comparison.number} is in neither QuickBooks Online nor the portal."
        case Verdict.ROUNDING:
            assert comparison.difference is not None
            return (
                f":heavy_check_mark: *Within rounding*: {fmt_money(abs(comparison.difference), currency)}"
                " apart, not a discrepancy."
            )


def check_message(
    comparison: Comparison,
    *,
    now: datetime,
    full_resync_since: date,
    requested_by: str | None = None,
    diagnosis: Diagnosis | None = None,
    followups: Sequence[FollowUp] = (),
) -> Message:
    """The check result: the root of the invoice's thread. With a diagnosis (by default the
    comparison's own): the cause, its evidence and steps, and only the buttons that help.
    ``followups``: money a resync took out of view, still to account for: shown until the
    evidence shows it accounted for, whatever the balances say."""
    diagnosis = diagnosis or comparison.diagnosis
    acct, portal = comparison.accounting, comparison.portal
    currency = acct.currency if acct else portal.currency if portal else None
    title = f"Invoice {comparison.number}"
    if comparison.customer_name:
        title += f" · {comparison.customer_name}"
    qbo_balance = fmt_money(acct.balance, currency) if acct else "_not found_"
    portal_balance = fmt_money(portal.balance, currency) if portal else "_not found_"
    blocks: list[Block] = [
        header(title),
        SectionBlock(
            fields=[
                mrkdwn(f"*QuickBooks Online balance*\n{qbo_balance}"),
                mrkdwn(f"*Portal balance*\n{portal_balance}"),
                mrkdwn(
                    "*Changed in QuickBooks*\n"
                    + (fmt_when(acct.last_updated, now=now) if acct else "—")
                ),
                mrkdwn(
                    "*Portal last synced*\n" + fmt_when(comparison.portal_last_sync_at, now=now)
                ),
            ]
        ),
        section(verdict_line(comparison, followups)),
    ]
    if followups:
        blocks.append(section(followups_text(followups)))
        if (accounted := accounted_buttons(followups)) is not None:
            blocks.append(accounted)
        if not offers_fix(diagnosis):
            blocks.extend(owed_fix_blocks(followups))
    if diagnosis is not None and diagnosis.cause.value != "in_sync":
        blocks.extend(cause_blocks(diagnosis))
    actions = resync_buttons(comparison, full_resync_since=full_resync_since, diagnosis=diagnosis)
    if actions is not None:
        blocks.append(actions)
    footer = f"Checked {fmt_moment(now)}"
    if requested_by:
        footer += f" for <@{requested_by}>"
    blocks.append(context(footer))
    text = f"{title}: {verdict_line(comparison, followups)}"
    if diagnosis is not None and diagnosis.cause.value != "in_sync":
        text += f" Cause: {CAUSE_TITLES[diagnosis.cause]}."
    return Message(text=text, blocks=blocks)


def resync_buttons(
    comparison: Comparison, *, full_resync_since: date, diagnosis: Diagnosis | None = None
) -> ActionsBlock | None:
    """Buttons for the fixes that can work; None when in sync or nothing can help.

    With a diagnosis: never a plain resync when it would hide money (then only "Resync
    anyway", with a confirm saying what drops out of view); the full resync alone when the
    portal's link is broken; a confirm first when QuickBooks must be fixed first.
    """
    if comparison.verdict not in (Verdict.MISMATCH, Verdict.MISSING_IN_PORTAL):
        return None
    number = comparison.number
    plain = [resync_invoice_button(number), full_resync_button(number, since=full_resync_since)]
    if diagnosis is not None:
        since = None if diagnosis.record_resync_works else full_resync_since
        payments_at_risk = any(r.kind in PAYMENT_RISKS for r in diagnosis.at_risk)
        if not diagnosis.complete:
            plain = [check_again_button(number)]
        elif payments_at_risk or diagnosis.action is Action.INVESTIGATE:
            plain = [resync_anyway_button(comparison, diagnosis, since=since)]
        elif diagnosis.action is Action.FULL_RESYNC:
            plain = plain[1:]
        elif diagnosis.action is Action.FIX_IN_QUICKBOOKS:
            # "Fixed in QuickBooks first?": the guard re-reads the evidence and does nothing
            # while it still shows the problem; "Resync anyway" acknowledges the amounts.
            plain = [resync_invoice_button(number, confirm=fix_first_confirm(diagnosis))]
            if diagnosis.resync_hides_money:
                plain.append(resync_anyway_button(comparison, diagnosis, since=since))
        elif diagnosis.action is Action.NONE:
            return None
        if offers_fix(diagnosis):
            plain.append(prepare_fix_button(number))
    return ActionsBlock(block_id=f"resync:{number}", elements=plain)


def check_again_button(number: str) -> ButtonElement:
    return ButtonElement(
        text="Check again",
        action_id=ActionId.CHECK_AGAIN.value,
        value=ButtonState(invoice=number).dump(),
    )


def resync_invoice_button(number: str, *, confirm: ConfirmObject | None = None) -> ButtonElement:
    return ButtonElement(
        text="Resync invoice",
        action_id=ActionId.RESYNC_INVOICE.value,
        value=ButtonState(invoice=number).dump(),
        style="primary",
        confirm=confirm,
    )


def full_resync_button(
    number: str | None, *, since: date, root: str | None = None
) -> ButtonElement:
    return ButtonElement(
        text="Resync full integration",
        action_id=ActionId.RESYNC_FULL.value,
        value=ButtonState(invoice=number, since=since, root=root).dump(),
        confirm=ConfirmObject(
            title="Resync the full integration?",
            text=(
                f"The portal re-reads every record changed in QuickBooks Online since "
                f"{since:%b %d, %Y}. It can take a few minutes."
            ),
            confirm="Start the resync",
            deny="Cancel",
        ),
    )
