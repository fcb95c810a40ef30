"""Block Kit for a diagnosis: the cause in one line, the evidence, the steps, and the
"Resync anyway" button for when a resync would hide money. Pure."""

from __future__ import annotations

from datetime import date

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from commands.actions import ActionId, ButtonState
from commands.format import escape, fmt_money, localize
from services.causes import Action, Cause, Diagnosis
from services.comparison import Comparison
from services.guard import Assessment, Exposure

MAX_SECTION = 3000
MAX_CONFIRM_TEXT = 300

CAUSE_TITLES = {
    Cause.STALE_COPY: "Stale copy",
    Cause.PAYMENT_NOT_TRANSFERRED: "Payment failed to transfer",
    Cause.CREDIT_NOT_APPLIED: "Credit not applied",
    Cause.INVOICE_RECREATED: "Invoice recreated in QuickBooks",
    Cause.INVOICE_DELETED: "Invoice deleted in QuickBooks",
    Cause.INVOICE_VOIDED: "Invoice voided in QuickBooks",
    Cause.ROUNDING: "Rounding",
    Cause.UNKNOWN: "Unknown",
    Cause.IN_SYNC: "None",
}
_ICONS = {
    Cause.PAYMENT_NOT_TRANSFERRED: ":money_with_wings:",
    Cause.CREDIT_NOT_APPLIED: ":receipt:",
    Cause.INVOICE_RECREATED: ":link:",
    Cause.INVOICE_DELETED: ":wastebasket:",
    Cause.INVOICE_VOIDED: ":no_entry_sign:",
    Cause.ROUNDING: ":heavy_minus_sign:",
    Cause.UNKNOWN: ":grey_question:",
}


def _section(text: str) -> SectionBlock:
    if len(text) > MAX_SECTION:
        text = text[: MAX_SECTION - 1] + "…"
    return SectionBlock(text=MarkdownTextObject(text=text))


def _shown(text: str) -> str:
    """The services layer's text, escaped, its moments in the reader's time zone."""
    return localize(escape(text))


def cause_line(diagnosis: Diagnosis) -> str:
    """The cause in one line: ``*Cause: Stale copy* (high confidence): ...``."""
    icon = _ICONS.get(diagnosis.cause, ":mag:")
    title = CAUSE_TITLES[diagnosis.cause]
    summary = _shown(diagnosis.summary)
    return f"{icon} *Cause: {title}* ({diagnosis.confidence.value} confidence). {summary}"


def cause_blocks(diagnosis: Diagnosis) -> list[Block]:
    """The cause, the evidence, what was checked (when unknown), the steps, the warning."""
    blocks: list[Block] = [_section(cause_line(diagnosis))]
    if diagnosis.evidence:
        blocks.append(_section("\n".join(f"• {_shown(line)}" for line in diagnosis.evidence)))
    if diagnosis.cause is Cause.UNKNOWN and diagnosis.checked:
        blocks.append(
            _section("*What I checked*\n" + "\n".join(f"• {_shown(c)}" for c in diagnosis.checked))
        )
    elif any(line.startswith("Could not check") for line in diagnosis.checked):
        gaps = [line for line in diagnosis.checked if line.startswith("Could not check")]
        text = _shown("\n".join(gaps))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=text)]))
    if diagnosis.steps:
        steps = "\n".join(f"{i}. {_shown(step)}" for i, step in enumerate(diagnosis.steps, 1))
        where = "in QuickBooks first" if diagnosis.action is Action.FIX_IN_QUICKBOOKS else ""
        blocks.append(_section(f"*To fix it {where}*\n{steps}".replace("  ", " ")))
    if diagnosis.hidden_by_resync:
        blocks.append(
            _section(
                ":warning: *No plain resync*: it would overwrite the portal's balance and take "
                "out of view " + _shown("; ".join(diagnosis.hidden_by_resync)) + "."
            )
        )
    if not diagnosis.complete:
        blocks.append(
            _section(
                ":warning: *Not re-checked*: part of the evidence could not be read, so I "
                "offer no resync until a check reads all of it."
            )
        )
    return blocks


def resync_anyway_button(
    comparison: Comparison, diagnosis: Diagnosis, *, since: date | None
) -> ButtonElement:
    """Danger-style, with a confirm that says what drops out of view. ``since``: a full
    integration resync from that date (the link is broken); None: a record resync."""
    currency = _currency(comparison)
    acct, portal = comparison.accounting, comparison.portal
    shows = (
        f"The portal will show QuickBooks' {fmt_money(acct.balance, currency)}"
        + (f" in place of {fmt_money(portal.balance, currency)}" if portal else "")
        if acct
        else "The portal will be resynced"
    )
    lost = (
        "Out of view, kept as follow-ups until accounted for: "
        + escape("; ".join(diagnosis.hidden_by_resync))
        + "."
    )
    text = f"{shows}. {lost}"
    if len(text) > MAX_CONFIRM_TEXT:
        text = text[: MAX_CONFIRM_TEXT - 1] + "…"
    what = "a full integration resync" if since is not None else "a record resync"
    return ButtonElement(
        text="Resync anyway",
        action_id=ActionId.RESYNC_ANYWAY.value,
        value=ButtonState(
            invoice=comparison.number, since=since, ack=fingerprint(comparison.number, diagnosis)
        ).dump(),
        style="danger",
        confirm=ConfirmObject(
            title=f"Resync anyway ({what})?",
            text=text,
            confirm="Resync anyway",
            deny="Cancel",
            style="danger",
        ),
    )


def fingerprint(number: str, diagnosis: Diagnosis) -> str | None:
    """What acknowledging this diagnosis's amounts means to the guard."""
    return Assessment(tuple(Exposure(number, risk) for risk in diagnosis.at_risk)).fingerprint


def fix_first_confirm(diagnosis: Diagnosis) -> ConfirmObject:
    """For a resync that only helps once QuickBooks is fixed (a credit to apply)."""
    first = diagnosis.steps[0] if diagnosis.steps else "Fix it in QuickBooks first."
    text = f"Did you do this first? {escape(first)}"
    if len(text) > MAX_CONFIRM_TEXT:
        text = text[: MAX_CONFIRM_TEXT - 1] + "…"
    return ConfirmObject(
        title="Fixed in QuickBooks first?", text=text, confirm="Resync", deny="Cancel"
    )


def _currency(comparison: Comparison) -> str | None:
    acct, portal = comparison.accounting, comparison.portal
    return acct.currency if acct else portal.currency if portal else None
