"""The work behind every listener, by name, and the listener of every button with work
behind it. The work runs after the ack; each piece takes only the request's body (and the
container), so it runs the same in this process or in the worker process (bot/work.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from bot.bootstrap import Container
from bot.context import COMMAND, REPLY, Caller, caller_of, deps, hand_off
from bot.errors import reply_for
from bot.listeners import actions, fixes
from bot.listeners.commands import command_work
from bot.waits import telling_waits
from commands.actions import ActionId
from services.errors import UsageError

log = logging.getLogger(__name__)

Work = Callable[[Container, Caller, dict[str, Any]], Awaitable[None]]
Check = Callable[[dict[str, Any]], object]
"""Reads what a click needs from its body, or raises UsageError (told privately)."""


def _invoice(body: dict[str, Any]) -> object:
    return actions.button_state(body, invoice=True)


CLICKS: dict[str, tuple[Work, Check]] = {
    ActionId.RESYNC_INVOICE: (actions.resync_invoice, _invoice),
    ActionId.RESYNC_ANYWAY: (actions.resync_anyway_work, _invoice),
    ActionId.RESYNC_FULL: (actions.resync_full, actions.button_state),
    ActionId.START_FULL_RESYNC: (actions.start_prompted, actions.prompted_since),
    ActionId.CHECK_AGAIN: (actions.check_again, _invoice),
    ActionId.MARK_ACCOUNTED: (actions.mark_accounted, actions.followup_of),
    ActionId.CONFIRM_ACCOUNTED: (actions.confirm_accounted_work, actions.followup_of),
    ActionId.PREPARE_FIX: (fixes.prepare, _invoice),
    ActionId.APPROVE_FIX: (fixes.approve, fixes.proposal_of),
    ActionId.REJECT_FIX: (fixes.reject, fixes.proposal_of),
}
"""Each button with work behind it: the work, and what its state must hold first."""

WORK: dict[str, Work] = {COMMAND: command_work} | {k: work for k, (work, _) in CLICKS.items()}


async def on_click(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    """Every button in ``CLICKS``: acked; a state that is forged, stale or incomplete is
    refused privately and starts nothing; otherwise the work is handed off."""
    await ack()
    name = str(actions.action_of(body)["action_id"])
    try:
        CLICKS[name][1](body)
    except UsageError as exc:
        container = deps(context)
        reply = reply_for(exc, container.metrics)
        tell = caller_of(body, container.slack).tell(**reply.as_kwargs())
        container.tasks.spawn(tell, name=REPLY)
        return
    hand_off(context, name, body)


async def run_work(container: Container, name: str, body: dict[str, Any]) -> None:
    """Run the work ``name`` for the request ``body``: its errors, and its throttled waits
    longer than WAIT_NOTICE_SECONDS, are told to the person privately."""
    work = WORK.get(name)
    if work is None:
        log.warning("no work named %r: nothing run", name)
        return
    caller = caller_of(body, container.slack)
    with telling_waits(container, caller):  # the long jobs it starts copy this context
        try:
            await work(container, caller, body)
        except Exception as exc:
            await caller.tell(**reply_for(exc, container.metrics).as_kwargs())
