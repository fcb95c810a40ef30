"""Socket Mode: the bot connects out to Slack; no public URL and no signing secret needed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.settings import Settings

_CONNECTED: dict[int, AsyncSocketModeHandler] = {}
"""The Socket Mode handler of each app (by id) while its ``socket_mode`` block runs."""


async def socket_state(app: AsyncApp) -> str:
    """For /healthz: ``connected`` or ``disconnected`` (slack_sdk reconnects by itself)."""
    handler = _CONNECTED.get(id(app))
    if handler is None:
        return "disconnected"
    connected = await handler.client.is_connected()
    return "connected" if connected else "disconnected"


@asynccontextmanager
async def socket_mode(app: AsyncApp, settings: Settings) -> AsyncIterator[AsyncSocketModeHandler]:
    """Connected for the block's duration (slack_sdk reconnects on its own)."""
    if settings.slack_app_token is None:
        raise ValueError("Socket Mode needs SLACK_APP_TOKEN")
    handler = AsyncSocketModeHandler(app, settings.slack_app_token.get_secret_value())
    await handler.connect_async()  # type: ignore[no-untyped-call]
    _CONNECTED[id(app)] = handler
    try:
        yield handler
    finally:
        _CONNECTED.pop(id(app), None)
        await handler.close_async()  # type: ignore[no-untyped-call]
