"""The guard's private question, and the message it came from: once the question is
answered and the write starts, that message's buttons are replaced too. The question is
private, so the click that answers it does not carry the message that asked it: the
question's button carries what that message showed (taken from the click that asked,
``commands.actions.Origin``), so nothing is read from the channel's history
(conversations.replies needs scopes the bot does not ask for)."""

from __future__ import annotations

import logging
from datetime import date

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.bootstrap import Container
from bot.context import Caller
from commands.actions import Origin, unpack_message
from commands.guard_blocks import acknowledge_message
from commands.resync_blocks import replace_actions
from services.guard import Assessment

log = logging.getLogger(__name__)


async def close_question(caller: Caller, note: str) -> None:
    """The private question that was just answered, replaced by what started (its button
    is not left live)."""
    try:
        await caller.respond(replace_original=True, text=f"{note}: progress in the thread.")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("could not replace the question: %s", type(exc).__name__)


async def replace_origin_buttons(
    deps: Container, channel: str, origin: Origin | None, note: str
) -> None:
    """Replace the buttons of the message ``origin`` (top-level or in a thread) with
    ``note``, from what it showed when its button was clicked."""
    if origin is None:
        return
    shown = unpack_message(origin.shown) if origin.shown else None
    if shown is None:  # too large to carry: its buttons stay (the guard re-checks them)
        log.info("the buttons of %s stay: what it showed was not carried", origin.ts)
        return
    text, blocks = shown
    try:
        await deps.pacer.wait(channel)
        await deps.slack.chat_update(
            channel=channel, ts=origin.ts, text=text or note, blocks=replace_actions(blocks, note)
        )
    except SlackApiError as exc:
        log.warning("could not replace the buttons of %s: %s", origin.ts, exc.response.get("error"))


async def ask_acknowledgement(
    deps: Container,
    caller: Caller,
    assessment: Assessment,
    *,
    what: str,
    invoice: str | None,
    since: date | None = None,
    root: str | None = None,
    origin: Origin | None = None,
) -> None:
    """Privately: what the write would take out of view, and the button that acknowledges
    exactly those amounts (``origin``: the message whose button asked). Nothing runs until
    it is pressed."""
    await deps.audit.record(
        actor=caller.user_id,
        action="resync_full" if since is not None else "resync_record",
        target=invoice or str(since),
        outcome="needs_acknowledgement",
        detail="; ".join(e.key for e in assessment.exposures)[:2000],
    )
    message = acknowledge_message(
        assessment, what=what, invoice=invoice, since=since, root=root, origin=origin
    )
    await caller.tell(**message.as_kwargs())
