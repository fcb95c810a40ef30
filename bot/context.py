"""Who asked, where: the coordinates every flow needs, taken from a Slack request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext

from bot.bootstrap import Container

Respond = Callable[..., Awaitable[Any]]


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
        await self.respond(
            text=text, blocks=blocks, response_type="ephemeral", replace_original=False
        )
