"""The message a guard's question came from: once the question is answered and the write
starts, that message's buttons are replaced too (the question itself is private, so the
click that answers it does not carry the message that asked it)."""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.bootstrap import Container
from bot.context import Caller
from commands.resync_blocks import replace_actions

log = logging.getLogger(__name__)


async def close_question(caller: Caller, note: str) -> None:
    """The private question that was just answered, replaced by what started (its button
    is not left live)."""
    try:
        await caller.respond(replace_original=True, text=f"{note}: progress in the thread.")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("could not replace the question: %s", type(exc).__name__)


async def replace_origin_buttons(
    deps: Container, channel: str, origin: str | None, note: str
) -> None:
    """Replace the buttons of message ``origin`` (top-level or in a thread) with ``note``."""
    if not origin:
        return
    try:
        found = await deps.slack.conversations_replies(channel=channel, ts=origin)
        message = next((m for m in found.get("messages") or [] if m.get("ts") == origin), None)
        blocks = message.get("blocks") if message else None
        if message is None or not isinstance(blocks, list):
            return
        await deps.pacer.wait(channel)
        await deps.slack.chat_update(
            channel=channel,
            ts=origin,
            text=str(message.get("text") or note),
            blocks=replace_actions(blocks, note),
        )
    except SlackApiError as exc:
        log.warning("could not replace the buttons of %s: %s", origin, exc.response.get("error"))
