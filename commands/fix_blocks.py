"""Block Kit for fixes in QuickBooks: the Prepare button, the proposal as before and after
with Approve and Reject, the decision and the result. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from commands.actions import ActionId, ButtonState
from commands.followup_text import BUTTONS
from commands.format import escape, fmt_moment, fmt_money
from services.causes import Action, Diagnosis
from services.fixes import FOLLOWUP_CAUSES, FixResult, Proposal, ProposalState
from services.followups import FollowUp


def _md(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text[:3000]))


def offers_fix(diagnosis: Diagnosis | None) -> bool:
    """A fix the bot can prepare in QuickBooks from the diagnosis's evidence, all of it read
    (never for an overpayment or an unknown cause)."""
    return (
        diagnosis is not None
        and diagnosis.complete
        and diagnosis.fix_ready
        and diagnosis.action is Action.FIX_IN_QUICKBOOKS
    )


def prepare_fix_button(number: str, *, named: bool = False) -> ButtonElement:
    """``named``: the label names the invoice (a message about several)."""
    return ButtonElement(
        text=f"Prepare fix in QuickBooks: {number}" if named else "Prepare fix in QuickBooks",
        action_id=ActionId.PREPARE_FIX.value,
        value=ButtonState(invoice=number).dump(),
    )


def owed_fix_blocks(followups: Sequence[FollowUp], *, named: bool = False) -> list[Block]:
    """**Prepare fix in QuickBooks** for each invoice whose money still to account for is a
    payment or a credit a fix can apply (at most ``BUTTONS`` invoices), unless the evidence
    just read (``FollowUp.fix_ready``) says no fix can be prepared. Listed without evidence
    (the digest, history), the fix is prepared when clicked, and a click with nothing left
    to apply says why, privately. ``named``: the labels name the invoices."""
    invoices = dict.fromkeys(
        f.invoice
        for f in followups
        if f.kind in FOLLOWUP_CAUSES and f.closed_at is None and f.fix_ready is not False
    )
    return [
        ActionsBlock(block_id=f"fix-owed:{n}", elements=[prepare_fix_button(n, named=named)])
        for n in list(invoices)[:BUTTONS]
    ]


def proposal_blocks(proposal: Proposal, *, decided: str | None = None) -> list[Block]:
    """The proposal as before and after; Approve and Reject while it waits, else ``decided``."""
    fix = proposal.fix
    m = fix.currency
    portal_before = fmt_money(fix.portal_before, m) if fix.portal_before is not None else "—"
    portal_after = fmt_money(fix.portal_after, m) if fix.portal_after is not None else "—"
    blocks: list[Block] = [
        _md(
            f":hammer_and_wrench: *Proposed fix in QuickBooks* by <@{proposal.proposed_by}>: "
            f"{escape(fix.headline)}."
        ),
        _md(
            f"*Transaction:* {escape(fix.transaction)}\n"
            + "\n".join(f"• {escape(line)}" for line in fix.changes())
        ),
        SectionBlock(
            fields=[
                MarkdownTextObject(
                    text="*QuickBooks balance*\n"
                    f"{fmt_money(fix.qbo_before, m)} → {fmt_money(fix.qbo_after, m)}"
                ),
                MarkdownTextObject(text=f"*Portal balance*\n{portal_before} → {portal_after}"),
            ]
        ),
    ]
    if decided is not None:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=decided)]))
        return blocks
    state = ButtonState(invoice=proposal.invoice, proposal=proposal.id).dump()
    blocks.append(
        ActionsBlock(
            block_id=f"fix:{proposal.id}",
            elements=[
                ButtonElement(
                    text="Approve",
                    action_id=ActionId.APPROVE_FIX.value,
                    value=state,
                    style="primary",
                    confirm=ConfirmObject(
                        title="Approve this change in QuickBooks?",
                        text=escape(fix.headline)[:280] + ".",
                        confirm="Approve",
                        deny="Cancel",
                    ),
                ),
                ButtonElement(text="Reject", action_id=ActionId.REJECT_FIX.value, value=state),
            ],
        )
    )
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Someone in FIX_APPROVERS other than <@{proposal.proposed_by}> approves. "
                    f"Expires {fmt_moment(proposal.expires_at)}."
                )
            ]
        )
    )
    return blocks


def proposal_text(proposal: Proposal) -> str:
    return f"Proposed fix in QuickBooks: {proposal.fix.headline}."


def decided_line(proposal: Proposal) -> str:
    who = f"<@{proposal.decided_by}>" if proposal.decided_by else "nobody"
    if proposal.state is ProposalState.REJECTED:
        return f":no_entry: Rejected by {who}. Nothing was changed."
    if proposal.state is ProposalState.EXPIRED:
        return ":hourglass: Expired without approval. Nothing was changed."
    return f":white_check_mark: Approved by {who}."


def result_text(result: FixResult) -> str:
    """What happened, in words, for the thread."""
    proposal, fix = result.proposal, result.proposal.fix
    if proposal.state in (ProposalState.REFUSED, ProposalState.FAILED):
        return f":x: {escape(proposal.detail or 'Not applied.')}"
    written = proposal.result
    ids = (
        f" (QuickBooks {written.txn_type} {written.txn_id}, SyncToken {written.sync_token}, "
        f"requestid {written.request_id}"
        + (f", intuit_tid {written.intuit_tid}" if written.intuit_tid else "")
        + ")"
        if written
        else ""
    )
    lines = [f":white_check_mark: Done in QuickBooks: {escape(fix.headline)}{ids}."]
    if result.dismissed and fix.dismiss is not None:
        lines.append(f"The portal's failed transfer of {fix.dismiss.reference} is dismissed.")
    c = result.comparison
    if c is not None and c.accounting is not None and c.portal is not None:
        m = fix.currency
        lines.append(
            f"Now: QuickBooks {fmt_money(c.accounting.balance, m)}, portal "
            f"{fmt_money(c.portal.balance, m)}"
            + (": in sync." if not c.out_of_sync else ": still apart, so the invoice is resynced.")
        )
    if result.followups:
        lines.append(f"Still to account for: {len(result.followups)} amount(s).")
    elif c is not None and not c.out_of_sync:
        lines.append("Nothing left to account for.")
    if proposal.detail:
        lines.append(escape(proposal.detail))
    return "\n".join(lines)


def no_fix_text(number: str, reason: str) -> str:
    return f":information_source: No fix prepared for invoice {number}: {escape(reason)}"


def fixes_off_text() -> str:
    return (
        "Fixes in QuickBooks are off. To turn them on, set FIX_APPROVERS to the Slack user ids "
        "and user group ids of the people who may approve them (for example "
        "`FIX_APPROVERS=U0BOB00001,S0FINADMIN`); one person proposes, another approves."
    )


def stamp(now: datetime) -> str:
    return fmt_moment(now)
