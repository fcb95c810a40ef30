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
from commands.blocks import help_message, usage_message
from commands.parse import Check, Command, Help, parse
from services.errors import UsageError


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
        await caller.tell(**reply_for(exc).as_kwargs())

    container.tasks.spawn(
        dispatch(container, caller, parsed),
        name=f"command:{type(parsed).__name__}",
        on_error=on_error,
    )


async def dispatch(container: Container, caller: Caller, parsed: Command) -> None:
    match parsed:
        case Check(number=number):
            await run_check(container, caller, number)
        case _:
            raise UsageError("That command is not available yet.")
