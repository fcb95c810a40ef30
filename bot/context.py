"""Who asked, where: the coordinates every flow needs, taken from a Slack request."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.bootstrap import Container

Respond = Callable[..., Awaitable[Any]]
log = logging.getLogger(__name__)

REPLY = "reply"
"""The name of request work that only answers the person privately."""
COMMAND = "command"
"""The name of the slash command's work (a button's work is named by its action id)."""


def deps(context: AsyncBoltContext) -> Container:
    container = context.get("deps")
    assert isinstance(container, Container), "the deps middleware is not installed"
    return container


def hand_off(context: AsyncBoltContext, name: str, body: dict[str, Any]) -> None:
    """After the ack: the work ``name`` (bot/listeners/work.py) runs with ``body``."""
    work = deps(context).work
    assert work is not None, "build_app sets where work is handed off"
    work.hand_off(name, body)


@dataclass(frozen=True)
class Caller:
    user_id: str
    channel_id: str
    respond: Respond
    """Private replies through response_url."""

    async def tell(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """Answer privately. A reply that cannot be delivered (a malformed or expired
        response_url, Slack unreachable) is logged, not raised: the person's request was
        handled, and a failed private note must not turn into an error of its own."""
        try:
            await self.respond(
                text=text, blocks=blocks, response_type="ephemeral", replace_original=False
            )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("could not answer %s privately: %s", self.user_id, type(exc).__name__)


def caller_of(body: dict[str, Any], slack: Any = None) -> Caller:
    """Who asked and where, from a slash command's or a click's body; private replies go to
    its response_url (through ``slack``'s proxy and TLS settings, as bolt's own do)."""
    user, channel = body.get("user"), body.get("channel")
    container = body.get("container") or {}
    user_id = user.get("id") if isinstance(user, dict) else body.get("user_id")
    channel_id = (
        (channel.get("id") or container.get("channel_id"))
        if isinstance(channel, dict)
        else body.get("channel_id")
    )
    respond = AsyncRespond(
        response_url=body.get("response_url"),
        proxy=getattr(slack, "proxy", None),
        ssl=getattr(slack, "ssl", None),
    )
    return Caller(user_id=str(user_id or ""), channel_id=str(channel_id or ""), respond=respond)
