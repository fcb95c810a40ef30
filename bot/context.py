"""Who asked, where: the coordinates every flow needs, taken from a Slack request."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.bootstrap import Container

Respond = Callable[..., Awaitable[Any]]
log = logging.getLogger(__name__)

REPLY = "reply"
"""The name of request work that only answers the person privately."""


def deps(context: AsyncBoltContext) -> Container:
    container = context.get("deps")
    assert isinstance(container, Container), "the deps middleware is not installed"
    return container


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
