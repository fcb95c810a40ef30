"""The work behind every listener, by name: what runs after the ack. Each piece takes only
the request's body (and the container), so it runs the same in this process or in the
worker process (bot/work.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.bootstrap import Container
from bot.context import COMMAND, Caller, caller_of
from bot.errors import reply_for
from bot.listeners import actions, fixes
from bot.listeners.commands import command_work
from bot.waits import telling_waits
from commands.actions import ActionId

log = logging.getLogger(__name__)

Work = Callable[[Container, Caller, dict[str, Any]], Awaitable[None]]

WORK: dict[str, Work] = {
    COMMAND: command_work,
    ActionId.RESYNC_INVOICE: actions.resync_invoice,
    ActionId.RESYNC_ANYWAY: actions.resync_anyway_work,
    ActionId.RESYNC_FULL: actions.resync_full,
    ActionId.START_FULL_RESYNC: actions.start_prompted,
    ActionId.CHECK_AGAIN: actions.check_again,
    ActionId.MARK_ACCOUNTED: actions.mark_accounted,
    ActionId.CONFIRM_ACCOUNTED: actions.confirm_accounted_work,
    ActionId.PREPARE_FIX: fixes.prepare,
    ActionId.APPROVE_FIX: fixes.approve,
    ActionId.REJECT_FIX: fixes.reject,
}
"""Buttons whose action id is here get ``actions.on_click``; the slash command its own."""


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
