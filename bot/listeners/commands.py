"""The `/invoice` slash command: ack at once, parse, hand the work off (bot/work.py)."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from bot.bootstrap import Container
from bot.context import COMMAND, Caller, hand_off
from bot.flows.check import run_check
from bot.flows.digest import digest_command
from bot.flows.history import show_history
from bot.flows.resync import (
    integration_for,
    resync_invoice_command,
    resync_record_command,
    start_full_resync,
)
from commands.blocks import help_message, usage_message
from commands.parse import (
    Check,
    Command,
    Digest,
    FullResync,
    Help,
    History,
    ResyncInvoice,
    ResyncRecord,
    parse,
)
from commands.resync_blocks import full_resync_prompt
from services.errors import UsageError
from services.reconcile import choose_sync_date


async def invoice_command(
    ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """Usage errors and the help are the ack itself; any other command is acked empty and
    handed off (``command_work``)."""
    try:
        parsed = parse(str(command.get("text") or ""))
    except UsageError as exc:
        await ack(**usage_message(exc.message).as_kwargs())
        return
    if isinstance(parsed, Help):
        await ack(**help_message().as_kwargs())
        return
    await ack()
    hand_off(context, COMMAND, command)


async def command_work(container: Container, caller: Caller, command: dict[str, Any]) -> None:
    parsed = parse(str(command.get("text") or ""))  # parsed once already: it was valid
    if not isinstance(parsed, Help):
        await dispatch(container, caller, parsed)


async def dispatch(container: Container, caller: Caller, parsed: Command) -> None:
    match parsed:
        case Check(number=number):
            await run_check(container, caller, number)
        case ResyncInvoice(number=number):
            await resync_invoice_command(container, caller, number)
        case ResyncRecord(record_type=record_type, record_id=record_id):
            await resync_record_command(container, caller, record_type, record_id)
        case FullResync(since=None):
            integration = await integration_for(container, None)
            default = choose_sync_date(now=container.clock())
            prompt = full_resync_prompt(default_since=default, integration_name=integration.name)
            await caller.tell(**prompt.as_kwargs())
        case FullResync(since=since):
            assert since is not None
            await start_full_resync(
                container, caller, since=since, invoice=None, thread_ts=None, typed=True
            )
        case History():
            await show_history(container, caller)
        case Digest():
            await digest_command(container, caller)
        case _:
            raise UsageError("That command is not available yet.")
