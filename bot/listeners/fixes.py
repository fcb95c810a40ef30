"""Fix buttons: Prepare fix in QuickBooks, Approve, Reject (bot.flows.fixes)."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.context import deps
from bot.flows.fixes import decide_fix, prepare_fix
from bot.listeners.actions import _button_state, _caller, _invoice_state, _refuse, _run
from commands.actions import ActionId
from services.errors import UsageError

NOT_VALID = "That button is not valid any more."


async def on_prepare_fix(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    await ack()
    container, caller = deps(context), _caller(body, respond)
    state = _invoice_state(container, caller, body)
    if state is None or state.invoice is None:
        return
    work = prepare_fix(container, caller, number=state.invoice, message=body.get("message") or {})
    _run(container, caller, work, f"click:{ActionId.PREPARE_FIX}")


async def _decide(
    body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond, *, approve: bool
) -> None:
    container, caller = deps(context), _caller(body, respond)
    state = _button_state(body, invoice=False)
    if isinstance(state, UsageError) or state.proposal is None:
        _refuse(
            container, caller, state if isinstance(state, UsageError) else UsageError(NOT_VALID)
        )
        return
    work = decide_fix(container, caller, proposal_id=state.proposal, approve=approve)
    action = ActionId.APPROVE_FIX if approve else ActionId.REJECT_FIX
    _run(container, caller, work, f"click:{action}")


async def on_approve_fix(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    await ack()
    await _decide(body, context, respond, approve=True)


async def on_reject_fix(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    await ack()
    await _decide(body, context, respond, approve=False)
