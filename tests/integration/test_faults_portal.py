"""The portal misbehaving (5xx, 429s, timeouts, dropped connections, slow syncs, a sync that
never finishes) during checks and resyncs: a correct answer or a clear message in the
thread or in private within a bounded time; retries bounded and logged; writes the portal
may have acted on are not repeated; no job lost or left running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.demo import RunningBot, SandboxWorld, sandbox_world
from services.jobs import Outcome
from services.models import utcnow
from tests.e2e.conftest import channel_messages, confirm_full_resync
from tests.faults_support import (
    HANG_SECONDS,
    PORTAL_LOG,
    assert_nothing_left,
    command,
    fault_bot,
    last_root,
    private,
    records,
    thread_texts,
    within,
)

RECORD_RESYNCS = "/api/v1/record-resyncs"
SYNCS = "/api/v1/integrations/"


@pytest.fixture
async def world() -> AsyncIterator[SandboxWorld]:
    async with sandbox_world(sync_seconds=0.3, record_resync_seconds=0.1) as w:
        w.portal.timeout_seconds = HANG_SECONDS  # longer than the bot waits, and the bound
        yield w


async def outcomes(bot: RunningBot) -> list[Outcome | None]:
    return [job.outcome for job in await bot.container.jobs.recent()]


@pytest.mark.parametrize("fault", ["500", "503", "429", "drop", "timeout"])
async def test_check_is_answered_through_a_portal_fault(
    world: SandboxWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    path = "/api/v1/invoices/"
    if fault == "drop":
        world.portal.inject_drop(path=path)
    elif fault == "timeout":
        world.portal.inject_timeout(path=path)
    else:
        world.portal.inject(int(fault), retry_after=0 if fault == "429" else None, path=path)
    async with fault_bot(world, tmp_path, portal_timeout_seconds=0.3) as bot:
        with within():
            await command(world, bot, "check 11003")
        assert "In sync" in str(last_root(world).blocks)
        assert private(world) == []
        assert world.portal.request_count("GET", path) == 2
        assert len(records(caplog, PORTAL_LOG, contains="retry 1/3")) == 1
        await assert_nothing_left(bot)


async def test_a_long_retry_after_is_cut_to_the_longest_wait_and_the_check_answered(
    world: SandboxWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The portal asks for two minutes: the bot waits PORTAL_MAX_RETRY_WAIT_SECONDS (0.05
    here) and asks again, as it does QuickBooks."""
    world.portal.inject(429, retry_after=120, path="/api/v1/invoices/")
    async with fault_bot(world, tmp_path) as bot:
        with within():
            await command(world, bot, "check 11003")
        assert "In sync" in str(last_root(world).blocks)
        assert private(world) == []
        assert len(records(caplog, PORTAL_LOG, contains="retrying in 0.05s")) == 1
        await assert_nothing_left(bot)


async def test_check_gives_up_when_the_portal_stays_busy_with_a_private_message(
    world: SandboxWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world.portal.inject(429, count=4, retry_after=120, path="/api/v1/invoices/")
    async with fault_bot(world, tmp_path) as bot:
        with within():
            await command(world, bot, "check 11003")
        assert channel_messages(world) == []
        [message] = private(world)
        assert "portal is busy" in message and "Reference: `ERR-" in message
        assert world.portal.request_count("GET", "/api/v1/invoices/") == 4  # 1 + 3 retries
        assert records(caplog, PORTAL_LOG, contains="failed:")
        await assert_nothing_left(bot)


async def test_a_refused_resync_request_is_not_repeated_and_the_thread_says_so(
    world: SandboxWorld, tmp_path: Path
) -> None:
    world.portal.inject(500, path=RECORD_RESYNCS)
    async with fault_bot(world, tmp_path) as bot:
        with within():
            await command(world, bot, "resync company 58")
        assert world.portal.request_count("POST", RECORD_RESYNCS) == 1  # may have acted: once
        assert "The resync stopped" in thread_texts(world, last_root(world).ts)[-1]
        assert await outcomes(bot) == [Outcome.ERROR]
        await command(world, bot, "resync company 58")  # trying again works
        assert "company 58 finished" in thread_texts(world, last_root(world).ts)[-1]
        await assert_nothing_left(bot)


async def test_a_resync_request_the_portal_never_took_is_retried(
    world: SandboxWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world.portal.inject(503, count=2, path=RECORD_RESYNCS)
    async with fault_bot(world, tmp_path) as bot:
        await command(world, bot, "resync company 58")
        assert world.portal.request_count("POST", RECORD_RESYNCS) == 3
        assert len(records(caplog, PORTAL_LOG, contains="POST /record-resyncs")) == 2
        assert await outcomes(bot) == [Outcome.COMPLETED]
        await assert_nothing_left(bot)


async def test_faults_while_polling_are_retried_and_the_resync_finishes(
    world: SandboxWorld, tmp_path: Path
) -> None:
    world.portal.record_resync_seconds = 0.5
    world.portal.inject(500, path=RECORD_RESYNCS + "/")
    world.portal.inject_drop(path=RECORD_RESYNCS + "/")
    world.portal.inject_timeout(path=RECORD_RESYNCS + "/")
    async with fault_bot(world, tmp_path, portal_timeout_seconds=0.3) as bot:
        with within():
            await command(world, bot, "resync contact 58")
        assert "contact 58 finished" in thread_texts(world, last_root(world).ts)[-1]
        assert await outcomes(bot) == [Outcome.COMPLETED]
        await assert_nothing_left(bot)


async def test_a_slow_full_sync_is_followed_to_its_end(world: SandboxWorld, tmp_path: Path) -> None:
    world.portal.sync_duration = 1.2  # several polls, each answered "running"
    since = (utcnow() - timedelta(days=1)).date().isoformat()
    async with fault_bot(world, tmp_path) as bot:
        with within():
            await command(world, bot, f"resync --since {since}")
            await confirm_full_resync(world, bot)
        texts = thread_texts(world, last_root(world).ts)
        assert any("Processed records" in t for t in texts)
        assert await outcomes(bot) == [Outcome.COMPLETED]
        await assert_nothing_left(bot)


async def test_a_sync_that_never_finishes_times_out_with_a_message(
    world: SandboxWorld, tmp_path: Path
) -> None:
    world.portal.sync_duration = 1e6
    since = (utcnow() - timedelta(days=1)).date().isoformat()
    async with fault_bot(world, tmp_path, resync_timeout_seconds=1.0) as bot:
        with within():
            await command(world, bot, f"resync --since {since}")
            await confirm_full_resync(world, bot)
        texts = thread_texts(world, last_root(world).ts)
        assert "Timed out." in texts[-1] and "Sync History" in texts[-1]
        assert await outcomes(bot) == [Outcome.TIMED_OUT]
        await assert_nothing_left(bot)


async def test_a_resync_request_that_times_out_is_not_repeated_and_the_thread_says_so(
    world: SandboxWorld, tmp_path: Path
) -> None:
    world.portal.inject_timeout(path=RECORD_RESYNCS)
    async with fault_bot(world, tmp_path, portal_timeout_seconds=0.3) as bot:
        with within():
            await command(world, bot, "resync company 58")
        assert world.portal.request_count("POST", RECORD_RESYNCS) == 1
        last = thread_texts(world, last_root(world).ts)[-1]
        assert "The resync stopped" in last and "timed out" in last
        assert await outcomes(bot) == [Outcome.ERROR]
        await assert_nothing_left(bot)
