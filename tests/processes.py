"""Real bot processes (`python -m bot.cli run`) against the sandbox hosted in the test
process: started, waited for, killed and started again."""

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

ROOT = Path(__file__).resolve().parents[1]

REPLICA_TIMINGS = {
    "JOB_LEASE_SECONDS": "1.2",
    "JOB_SWEEP_SECONDS": "0.2",
    "RESYNC_REQUEST_GRACE_SECONDS": "3",
}
"""Short leases: a killed replica's jobs move on within about a second and a half."""

START_SECONDS = 60.0
"""How long a bot process may take to answer /healthz: 2-3 s on an idle machine (its imports
alone take 2 s of CPU), up to 20 s with four CPU-bound processes and another test suite
beside the tests."""


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
        DIGEST_ENABLED="false",
        LOG_LEVEL="WARNING",
        **REPLICA_TIMINGS,
    )
    return env


async def start_bot(
    env: dict[str, str],
    *,
    spawned: Callable[[int], object] | None = None,
    may_die: Callable[[], bool] = lambda: False,
) -> asyncio.subprocess.Process:
    """A bot process, once its /healthz answers. ``spawned``: called with its pid at once
    (a resumed job may be at work before the bot answers, and be killed there: ``may_die``
    says whether a death before the answer is the one the test arranged)."""
    port = env["HTTP_PORT"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", cwd=ROOT, env=env
    )
    if spawned is not None:
        spawned(process.pid)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_SECONDS
    async with httpx.AsyncClient() as client:
        while loop.time() < deadline:
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            if process.returncode is not None and may_die():
                return process
            assert process.returncode is None, "the bot exited at start"
            await asyncio.sleep(0.05)
    process.kill()
    raise AssertionError(f"the bot did not answer /healthz within {START_SECONDS:g} s")


async def stop(process: asyncio.subprocess.Process, *, kill: bool = False) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    await process.wait()


@asynccontextmanager
async def bot_process(env: dict[str, str], port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    assert env["HTTP_PORT"] == str(port)
    process = await start_bot(env)
    try:
        yield process
    finally:
        await stop(process)


async def until(predicate: Callable[[], bool], *, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)
