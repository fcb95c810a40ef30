"""Fixes in QuickBooks from Slack: **Prepare fix in QuickBooks** posts the proposal in the
invoice's thread; **Approve** (someone in FIX_APPROVERS other than the proposer) applies it
through services.fixes; **Reject** (the proposer or an approver) drops it. Every step is in
the thread and the audit log; refusals are private."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.bootstrap import Container
from bot.context import Caller
from bot.flows.resync import resync_invoice_button
from commands.blocks import error_message
from commands.fix_blocks import (
    decided_line,
    fixes_off_text,
    no_fix_text,
    proposal_blocks,
    proposal_text,
    result_text,
)
from commands.format import localize
from services.fixes import Decision, FixResult, NoFix, Proposal, ProposalState

log = logging.getLogger(__name__)


def _thread(message: dict[str, Any]) -> str:
    return str(message.get("thread_ts") or message.get("ts") or "")


async def _say(deps: Container, channel: str, thread_ts: str, text: str, **extra: Any) -> str:
    await deps.pacer.wait(channel)
    response = await deps.slack.chat_postMessage(
        channel=channel, thread_ts=thread_ts, text=text, **extra
    )
    return str(response.get("ts") or "")


async def _off(deps: Container, caller: Caller) -> bool:
    """True (the person told how to turn it on) when the feature is off."""
    if deps.settings.fix_approvers and deps.fixes is not None:
        return False
    await caller.tell(**error_message(fixes_off_text()).as_kwargs())
    return True


async def may_approve(deps: Container, user_id: str) -> bool:
    """In FIX_APPROVERS: by user id, or as a member of a user group listed there."""
    listed = deps.settings.fix_approvers
    if user_id in listed:
        return True
    for group in (entry for entry in listed if entry.startswith("S")):
        try:
            response = await deps.slack.usergroups_users_list(usergroup=group)
        except SlackApiError:
            log.warning("could not read the members of user group %s", group)
            continue
        if user_id in (response.get("users") or []):
            return True
    return False


async def prepare_fix(
    deps: Container, caller: Caller, *, number: str, message: dict[str, Any]
) -> None:
    if await _off(deps, caller):
        return
    assert deps.fixes is not None
    thread_ts = _thread(message)
    proposed = await deps.fixes.propose(
        number, user=caller.user_id, channel=caller.channel_id, thread_ts=thread_ts
    )
    if isinstance(proposed, NoFix):  # a stale button: the evidence changed since it showed
        await caller.tell(text=no_fix_text(number, proposed.reason))
        return
    posting = await deps.fixes.records.claim_message(proposal_id=proposed.id)
    if not posting:
        await caller.tell(
            **error_message(
                f"A fix for invoice {number} is already proposed by <@{proposed.proposed_by}>: "
                "see the invoice's thread."
            ).as_kwargs()
        )
        return
    ts = await _say(
        deps,
        proposed.channel,
        proposed.thread_ts,
        proposal_text(proposed),
        blocks=[b.to_dict() for b in proposal_blocks(proposed)],
    )
    await deps.fixes.records.move(
        proposal_id=proposed.id,
        frm=(ProposalState.PROPOSED,),
        to=ProposalState.PROPOSED,
        message_ts=ts,
    )


async def decide_fix(deps: Container, caller: Caller, *, proposal_id: str, approve: bool) -> None:
    """Approve (then apply) or reject; a click that decides nothing is answered privately."""
    if await _off(deps, caller):
        return
    assert deps.fixes is not None
    allowed = await may_approve(deps, caller.user_id)
    try:
        if approve:
            decided = await deps.fixes.approve(proposal_id, user=caller.user_id, allowed=allowed)
        else:
            decided = await deps.fixes.reject(proposal_id, user=caller.user_id, allowed=allowed)
    except Decision as exc:
        if exc.proposal is not None and exc.proposal.state is ProposalState.EXPIRED:
            await _settle(deps, exc.proposal)
        await caller.tell(**error_message(localize(exc.message)).as_kwargs())
        return
    await _settle(deps, decided)
    if approve:
        result = await deps.fixes.apply(decided)
        await report(deps, caller, result)


async def _settle(deps: Container, proposal: Proposal) -> None:
    """The proposal message without its buttons, saying who decided."""
    line = decided_line(proposal)
    if proposal.message_ts:
        try:
            await deps.pacer.wait(proposal.channel)
            await deps.slack.chat_update(
                channel=proposal.channel,
                ts=proposal.message_ts,
                text=proposal_text(proposal),
                blocks=[b.to_dict() for b in proposal_blocks(proposal, decided=line)],
            )
        except SlackApiError as exc:
            log.warning("could not update the proposal: %s", exc.response.get("error"))
    await _say(deps, proposal.channel, proposal.thread_ts, line)


async def report(deps: Container, caller: Caller | None, result: FixResult) -> None:
    """The outcome in the thread; a portal record still apart is resynced (through the
    runner and its guard), on behalf of the approver when the fix was resumed."""
    proposal = result.proposal
    await _say(deps, proposal.channel, proposal.thread_ts, result_text(result))
    if caller is None:
        caller = Caller(proposal.decided_by or "", proposal.channel, respond=_nobody)
    if result.needs_resync:
        thread = {"ts": proposal.thread_ts, "thread_ts": proposal.thread_ts}
        await resync_invoice_button(
            deps, caller, number=proposal.invoice, message=thread, root=proposal.thread_ts
        )


async def _nobody(**_: Any) -> None:
    """A resumed fix has no click to answer privately."""


async def resume_fixes(deps: Container) -> None:
    """At start: approved fixes this replica (or a dead one) left unfinished, finished once
    and said in the thread; then a sweep for those of replicas that die later."""
    if deps.fixes is None:
        return
    for result in await deps.fixes.resume_due(own=True):
        await report(deps, None, result)
    if deps.fix_sweeper is None and deps.settings.job_sweep_seconds > 0:
        deps.fix_sweeper = asyncio.create_task(_sweep(deps), name="fix-sweeper")


async def _sweep(deps: Container) -> None:
    assert deps.fixes is not None
    while True:
        await deps.sleep(deps.settings.job_sweep_seconds)
        try:
            for result in await deps.fixes.resume_due():
                await report(deps, None, result)
            for proposal in await deps.fixes.expire_due():
                await _settle(deps, proposal)
        except Exception:
            log.warning("fix sweep failed", exc_info=True)
