"""Block Kit for the guard: what a write would take out of view, the acknowledgement that
lets it through, and the follow-ups (money still to account for). Pure."""

from __future__ import annotations

from datetime import date

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
)

from commands.actions import ActionId, ButtonState
from commands.blocks import Message, context, section
from commands.followup_text import LISTED, followups_text
from commands.format import csv_cell, escape, fmt_money
from services.followups import FollowUp
from services.guard import Assessment

IN_CONFIRM = 10
MAX_CONFIRM_TEXT = 300


def acknowledge_button(
    assessment: Assessment,
    *,
    invoice: str | None,
    since: date | None,
    root: str | None,
    origin: str | None = None,
) -> ButtonElement:
    """ "Resync anyway": carries the fingerprint of exactly these amounts; its confirm names
    the first ten."""
    names = "; ".join(e.line for e in assessment.exposures[:IN_CONFIRM])
    more = len(assessment.exposures) - IN_CONFIRM
    text = f"Out of view, kept as follow-ups: {names}" + (f"; {more} more" if more > 0 else "")
    if assessment.long_ago:
        text = f"Re-reads {assessment.records:,} invoices. " + (text if names else "")
    if len(text) > MAX_CONFIRM_TEXT:
        text = text[: MAX_CONFIRM_TEXT - 1] + "…"
    what = "full integration resync" if since is not None else "record resync"
    return ButtonElement(
        text="Resync anyway",
        action_id=(ActionId.RESYNC_ANYWAY if invoice else ActionId.START_FULL_RESYNC).value,
        value=ButtonState(
            invoice=invoice, since=since, root=root, ack=assessment.fingerprint, origin=origin
        ).dump(),
        style="danger",
        confirm=ConfirmObject(
            title=f"Run the {what} anyway?",
            text=escape(text),
            confirm="Resync anyway",
            deny="Cancel",
            style="danger",
        ),
    )


def acknowledge_message(
    assessment: Assessment,
    *,
    what: str,
    invoice: str | None,
    since: date | None,
    root: str | None = None,
    origin: str | None = None,
) -> Message:
    """The private question before a write that would take money out of view; ``origin``:
    the message whose button asked it (its buttons go once the question is answered)."""
    lines = [f":warning: *{what} would take money out of view.* Nothing has been sent yet."]
    if assessment.long_ago and assessment.since is not None:
        lines.append(
            f"It reaches back to {assessment.since:%b %d, %Y} and re-reads "
            f"{assessment.records:,} invoices changed in QuickBooks since."
        )
    if assessment.exposures:
        listed = [f"• {escape(e.line)}" for e in assessment.exposures[:LISTED]]
        if len(assessment.exposures) > LISTED:
            listed.append(f"_…and {len(assessment.exposures) - LISTED} more (all in the thread)_")
        lines.append(
            f"It would overwrite these ({fmt_money(assessment.amount)}):\n" + "\n".join(listed)
        )
        lines.append(
            "Fix them in QuickBooks first (`/invoice check NUMBER` has the steps), or resync "
            "anyway: each amount then stays on every check and digest as money to account "
            "for, until QuickBooks shows it accounted for."
        )
    blocks: list[Block] = [section("\n".join(lines[:2])), *(section(x) for x in lines[2:])]
    button = acknowledge_button(assessment, invoice=invoice, since=since, root=root, origin=origin)
    blocks.append(ActionsBlock(block_id="acknowledge", elements=[button]))
    return Message(text=lines[0].replace("*", ""), blocks=blocks)


def full_resync_question(assessment: Assessment, *, integration_name: str) -> Message:
    """A typed full resync with nothing at risk: what it re-reads, and a Start button."""
    assert assessment.since is not None
    text = (
        f"Full resync of *{escape(integration_name)}* from {assessment.since:%b %d, %Y}: the "
        f"portal re-reads the {assessment.records:,} invoices changed in QuickBooks since. "
        "None of them would lose a payment or credit from view."
    )
    button = ButtonElement(
        text="Start full resync",
        action_id=ActionId.START_FULL_RESYNC.value,
        value=ButtonState(since=assessment.since, ack=assessment.fingerprint).dump(),
        style="primary",
    )
    return Message(
        text="Full integration resync",
        blocks=[section(text), ActionsBlock(block_id="full_resync_start", elements=[button])],
    )


def acknowledged_message(followups: list[FollowUp]) -> Message:
    """In the thread, before the write: what the requester acknowledged."""
    text = (
        "Acknowledged before the resync; each stays a follow-up until QuickBooks shows it "
        "accounted for.\n" + followups_text(followups)
    )
    return Message(text="Money to account for after this resync", blocks=[section(text)])


def refused_note(reason: str) -> Message:
    text = f":no_entry: *Nothing was sent to the portal.* {reason}"
    return Message(text=text.replace("*", ""), blocks=[section(text), context("Nothing changed.")])


def followups_csv(followups: list[FollowUp]) -> str:
    """Every follow-up, times in UTC (spreadsheet-safe cells)."""
    rows = ["invoice,reference,amount,what,acknowledged_by,opened_at_utc"]
    for f in followups:
        cells = [f.invoice, f.reference, str(f.amount), f.what, f.acknowledged_by]
        rows.append(",".join(csv_cell(c) for c in cells) + f",{f.opened_at:%Y-%m-%dT%H:%M:%SZ}")
    return "\n".join(rows) + "\n"
