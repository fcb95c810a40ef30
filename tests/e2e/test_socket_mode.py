"""Socket Mode: the bot connects out to the emulator's WebSocket; no request URL at all."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from bot.app import build_app
from bot.bootstrap import bootstrap
from bot.demo import SandboxWorld
from bot.socket import socket_mode
from tests.e2e.conftest import FAST, buttons, channel_messages


async def test_check_and_resync_over_socket_mode(world: SandboxWorld, database_url: str) -> None:
    emu = world.emulator
    settings = world.bot_settings(
        database_url=database_url,
        slack_mode="auto",
        slack_app_token=SecretStr(emu.api.app_token),
        slack_signing_secret=SecretStr(""),
        **FAST,
    )
    assert settings.socket_mode
    container = await bootstrap(settings)
    try:
        async with socket_mode(build_app(container), settings):
            for _ in range(100):
                if emu.api.sockets.connected:
                    break
                await asyncio.sleep(0.02)
            emu.request_url = None
            reply = await emu.send_command("/invoice", "check 11260")
            assert reply.status == 200 and reply.error is None
            await emu.wait_for_quiet(quiet=0.3, timeout=30, is_busy=lambda: container.tasks.busy)
            [root] = channel_messages(world)
            assert "Out of sync by $10.00" in str(root.blocks)
            assert buttons(root) == ["Resync invoice", "Resync full integration"]

            await emu.click(emu.number_of("Resync invoice"))
            await emu.wait_for_quiet(quiet=0.3, timeout=30, is_busy=lambda: container.tasks.busy)
            replies = world.emulator.state.replies("C0FINANCE1", root.ts)
            assert "Fixed." in str(replies[-1].blocks)

            usage = await emu.send_command("/invoice", "check abc")
            assert "not an invoice number" in usage.body
    finally:
        await container.aclose()


async def test_unsigned_http_is_not_served_in_socket_mode(
    world: SandboxWorld, database_url: str
) -> None:
    import httpx

    from bot.http import build_http_app
    from sandbox.server import serving

    settings = world.bot_settings(
        database_url=database_url, slack_mode="socket", slack_app_token=SecretStr("xapp-1")
    )
    container = await bootstrap(settings)
    try:
        async with (
            serving(build_http_app(build_app(container), container)) as url,
            httpx.AsyncClient() as client,
        ):
            response = await client.post(f"{url}/slack/events", data={"command": "/invoice"})
            assert response.status_code == 404
            health = await client.get(f"{url}/healthz")  # served, but no socket is open
            assert (health.status_code, health.json()["slack"]) == (503, "disconnected")
    finally:
        await container.aclose()
