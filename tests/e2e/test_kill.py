"""A bot process killed (SIGKILL) during a full resync, started again, finishes the thread."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from bot.demo import BOT_CLIENT, SandboxWorld
from tests.e2e.conftest import buttons, channel_messages, thread

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_env(world: SandboxWorld, database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "QBO_", "PORTAL_"))}
    env.update(
        SLACK_BOT_TOKEN=world.emulator.bot_token,
        SLACK_SIGNING_SECRET=world.emulator.signing_secret,
        SLACK_MODE="http",
        SLACK_API_URL=world.emulator.api_url,
        SLACK_CHANNEL_INTERVAL_SECONDS="0.02",
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(port),
        QBO_BASE_URL=world.qbo_url,
        QBO_TOKEN_URL=f"{world.qbo_url}/oauth2/v1/tokens/bearer",
        QBO_REALM_ID=world.qbo.realm_id,
        QBO_CLIENT_ID=BOT_CLIENT[0],
        QBO_CLIENT_SECRET=BOT_CLIENT[1],
        QBO_REFRESH_TOKEN=world.bot_refresh_token,
        PORTAL_BASE_URL=world.portal_url,
        PORTAL_API_KEY=world.portal.api_key,
        DATABASE_URL=database_url,
        RESYNC_POLL_SECONDS="0.1",
        LOG_LEVEL="WARNING",
    )
    return env


@asynccontextmanager
async def bot_process(env: dict[str, str], port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", cwd=ROOT, env=env
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.returncode is None, "the bot exited at start"
                await asyncio.sleep(0.05)
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def until(predicate: Callable[[], bool], *, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def test_killed_bot_finishes_the_full_resync_after_restart(
    world: SandboxWorld, database_url: str
) -> None:
    world.portal.sync_duration = 3.0
    port = free_port()
    env = bot_env(world, database_url, port)
    emu = world.emulator
    emu.request_url = f"http://127.0.0.1:{port}/slack/events"

    async with bot_process(env, port) as first:
        await emu.send_command("/invoice", "check 11262")
        await until(lambda: len(channel_messages(world)) == 1)
        root = channel_messages(world)[0]
        await until(lambda: buttons(root) != [])
        await emu.click(emu.number_of("Resync full integration"))
        await until(lambda: any(r.status == "running" for r in world.portal.runs.values()))
        await until(lambda: any("running" in m.text for m in thread(world, root.ts)))
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert not any("Fixed." in str(m.blocks) for m in thread(world, root.ts))

    async with bot_process(env, port):
        await until(lambda: any("Fixed." in str(m.blocks) for m in thread(world, root.ts)))
        await asyncio.sleep(0.3)

    texts = [str(m.blocks) for m in thread(world, root.ts)]
    assert sum("Fixed." in t for t in texts) == 1
    assert sum("Processed records" in t for t in texts) == 1
    assert world.portal.request_count("POST", "/api/v1/integrations/") == 1
    assert "In sync" in str(root.blocks)
