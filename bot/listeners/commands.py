"""The `/invoice` slash command: ack at once, parse, hand the work to a background task."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.bootstrap import Container
from bot.context import Caller, deps
from bot.errors import reply_for
from bot.flows.check import run_check
from bot.flows.digest import digest_command
from bot.flows.history import show_history
from bot.flows.resync import (
    integration_for,
    resync_invoice_command,
    resync_record_command,
    start_full_resync,
)
from bot.waits import telling_waits
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
    ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    try:
        parsed = parse(str(command.get("text") or ""))
    except UsageError as exc:
        await ack(**usage_message(exc.message).as_kwargs())
        return
    if isinstance(parsed, Help):
        await ack(**help_message().as_kwargs())
        return
    await ack()
    container = deps(context)
    caller = Caller(
        user_id=str(command.get("user_id", "")),
        channel_id=str(command.get("channel_id", "")),
        respond=respond,
    )

    async def on_error(exc: BaseException) -> None:
        await caller.tell(**reply_for(exc, container.metrics).as_kwargs())

    with telling_waits(container, caller):
        container.tasks.spawn(
            dispatch(container, caller, parsed),
            name=f"command:{type(parsed).__name__}",
            on_error=on_error,
        )


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
