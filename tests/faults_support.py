"""Helpers for the fault, security and delivery tests: the sandbox world and a bot whose
retries are fast (the retry policy is the production one, with short waits)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.demo import RunningBot, SandboxWorld, running_bot
from tests.e2e.conftest import FAST, channel_messages, fresh_database_url, settle, thread

ALICE = "U0ALICE001"
QBO_LOG = "services.adapters.qbo"
PORTAL_LOG = "services.adapters.portal"

FAST_RETRIES: dict[str, Any] = {
    "qbo_retry_backoff_seconds": 0.01,
    "qbo_max_retry_wait_seconds": 0.05,
    "qbo_timeout_seconds": 1.0,
    "portal_retry_backoff_seconds": 0.01,
    "portal_max_retry_wait_seconds": 0.05,
    "portal_timeout_seconds": 1.0,
}


@asynccontextmanager
async def fault_bot(
    world: SandboxWorld, tmp_path: Path, *, database_url: str | None = None, **overrides: Any
) -> AsyncIterator[RunningBot]:
    url = database_url or await fresh_database_url(tmp_path)
    settings = world.bot_settings(database_url=url, **{**FAST, **FAST_RETRIES, **overrides})
    async with running_bot(settings) as bot:
        world.emulator.request_url = bot.url
        yield bot


async def command(world: SandboxWorld, bot: RunningBot, text: str) -> None:
    reply = await world.emulator.send_command("/invoice", text)
    assert reply.status == 200 and reply.error is None, reply
    await settle(world, bot)


async def click(world: SandboxWorld, bot: RunningBot, label: str) -> None:
    reply = await world.emulator.click(world.emulator.number_of(label))
    assert reply is not None and reply.status == 200, reply
    await settle(world, bot)


def private(world: SandboxWorld, user: str = ALICE) -> list[str]:
    return [f"{m.text} {m.blocks}" for m in world.emulator.state.ephemerals(user)]


def thread_texts(world: SandboxWorld, root_ts: str) -> list[str]:
    return [str(m.blocks) for m in thread(world, root_ts)]


def last_root(world: SandboxWorld) -> Any:
    return channel_messages(world)[-1]


async def assert_nothing_left(bot: RunningBot) -> None:
    """No job lost or left running, no background work still going."""
    assert await bot.container.jobs.unfinished() == []
    assert not bot.container.tasks.busy


def records(caplog: pytest.LogCaptureFixture, logger: str, *, contains: str = "") -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == logger and contains in r.getMessage() and r.levelno >= logging.WARNING
    ]


HANG_SECONDS = 60.0
"""How long an injected timeout holds a request: far longer than the bot waits for one
(0.3 s in these tests, 30 s by default)."""

BOUND_SECONDS = 20.0
"""What a fault may cost: far below what waiting one out would (a hang of HANG_SECONDS, a
Retry-After of a minute or more, the default timeouts of 30 s and more), and far above what
the bot's own work takes on a loaded machine (about 1 s idle; 6 s with four CPU-bound
processes and another test suite beside it)."""


@contextmanager
def within(seconds: float = BOUND_SECONDS) -> Iterator[None]:
    """The block must finish within ``seconds`` (a bounded time, not just eventually)."""
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"took {elapsed:.1f}s, more than {seconds}s"
