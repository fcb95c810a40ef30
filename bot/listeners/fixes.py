"""The work behind the fix buttons: Prepare fix in QuickBooks, Approve, Reject
(bot.flows.fixes). Their listener is ``on_click`` (bot/listeners/work.py), as for every
button."""

from __future__ import annotations

from typing import Any

from bot.bootstrap import Container
from bot.context import Caller
from bot.flows.fixes import decide_fix, prepare_fix
from bot.listeners.actions import NOT_VALID, button_state, invoice_of
from services.errors import UsageError


async def prepare(container: Container, caller: Caller, body: dict[str, Any]) -> None:
    number = invoice_of(button_state(body, invoice=True))
    await prepare_fix(container, caller, number=number, message=body.get("message") or {})


def proposal_of(body: dict[str, Any]) -> str:
    proposal = button_state(body).proposal
    if proposal is None:
        raise UsageError(NOT_VALID)
    return proposal


async def approve(container: Container, caller: Caller, body: dict[str, Any]) -> None:
    await decide_fix(container, caller, proposal_id=proposal_of(body), approve=True)


async def reject(container: Container, caller: Caller, body: dict[str, Any]) -> None:
    await decide_fix(container, caller, proposal_id=proposal_of(body), approve=False)
