"""QuickBooks Online misbehaving (429s, 5xx, timeouts, dropped connections, expired and
revoked tokens) while people check and resync: a correct answer or a clear private
message within a bounded time, bounded logged retries, no job lost or left running."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.demo import BOT_CLIENT, SandboxWorld, sandbox_world
from sandbox.qbo.state import FaultKind
from services.adapters.qbo.auth import DEAD, is_dead, needs_seed
from services.models import TokenSet
from tests.e2e.conftest import channel_messages, settle
from tests.faults_support import (
    HANG_SECONDS,
    QBO_LOG,
    assert_nothing_left,
    click,
    command,
    fault_bot,
    last_root,
    private,
    records,
    thread_texts,
    within,
)

TOKEN_PATH = "/oauth2/v1/tokens/bearer"


@pytest.fixture
async def world() -> AsyncIterator[SandboxWorld]:
    async with sandbox_world(sync_seconds=0.3, record_resync_seconds=0.1) as w:
        yield w


def api_calls(world: SandboxWorld) -> int:
    return sum(n for path, n in world.qbo.request_counts.items() if path != TOKEN_PATH)


@pytest.mark.parametrize(
    "faults",
    [
        [FaultKind.THROTTLE, FaultKind.THROTTLE],
        [FaultKind.SERVER_ERROR, FaultKind.UNAVAILABLE],
        [FaultKind.DROP, FaultKind.FAULT_IN_200],
        [FaultKind.TIMEOUT],
    ],
    ids=["429", "5xx", "drop", "timeout"],
)
async def test_check_gets_the_right_answer_through_transient_faults(
    world: SandboxWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture, faults: list[FaultKind]
) -> None:
    caplog.set_level(logging.INFO)
    world.qbo.knobs.timeout_seconds = HANG_SECONDS  # longer than the bot waits, and the bound
    async with fault_bot(world, tmp_path, qbo_timeout_seconds=0.3) as bot:
        world.qbo.inject(*faults)
        with within():
            await command(world, bot, "check 11003")
        assert "In sync" in str(last_root(world).blocks)
        assert private(world) == []
        retried = records(caplog, QBO_LOG, contains="retrying")
        assert len(retried) == len(faults)  # each fault retried once, and logged
        assert api_calls(world) == len(faults) + 1
        await assert_nothing_left(bot)


async def test_check_gives_up_after_bounded_retries_with_a_private_message(
    world: SandboxWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with fault_bot(world, tmp_path, qbo_max_retries=3) as bot:
        world.qbo.knobs.fault_rate = 1.0
        world.qbo.knobs.fault_kinds = (FaultKind.SERVER_ERROR,)
        with within():
            await command(world, bot, "check 11260")
        assert channel_messages(world) == []
        [message] = private(world)
        assert "QuickBooks Online did not answer" in message and "Reference: `ERR-" in message
        assert api_calls(world) == 4  # the first try and three retries, no more
        assert len(records(caplog, QBO_LOG, contains="retrying")) == 3
        assert len(records(caplog, QBO_LOG, contains="failed:")) == 1
        await assert_nothing_left(bot)


async def test_a_long_retry_after_is_not_waited_out(
    world: SandboxWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Intuit asks for a minute: the bot waits at most QBO_MAX_RETRY_WAIT_SECONDS a retry."""
    world.qbo.knobs.retry_after = 60
    async with fault_bot(world, tmp_path, qbo_max_retries=2, qbo_max_retry_wait_seconds=0.2) as bot:
        world.qbo.knobs.fault_rate = 1.0
        world.qbo.knobs.fault_kinds = (FaultKind.THROTTLE,)
        with within():
            await command(world, bot, "check 11260")
        [message] = private(world)
        assert "QuickBooks Online is busy" in message
        assert len(records(caplog, QBO_LOG, contains="retrying in 0.20s")) == 2
        await assert_nothing_left(bot)


async def test_an_expired_access_token_is_refreshed_and_the_check_answered(
    world: SandboxWorld, tmp_path: Path
) -> None:
    async with fault_bot(world, tmp_path) as bot:
        await command(world, bot, "check 11003")
        auth = bot.container.accounting.auth  # type: ignore[attr-defined]
        refreshes = auth.refreshes
        world.qbo.inject(FaultKind.EXPIRED_TOKEN)
        await command(world, bot, "check 11003")
        assert auth.refreshes == refreshes + 1
        world.qbo.expire_access_tokens()  # the portal's tokens too: it refreshes its own
        await command(world, bot, "resync 11260")
        assert auth.refreshes == refreshes + 2
        root = last_root(world)
        assert "Fixed." in thread_texts(world, root.ts)[-1]
        assert private(world) == []
        await assert_nothing_left(bot)


async def test_a_revoked_connection_gives_one_clear_message_and_asks_intuit_once(
    world: SandboxWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with fault_bot(world, tmp_path) as bot:
        await command(world, bot, "check 11003")
        world.qbo.revoke(BOT_CLIENT[0])
        refreshes = world.qbo.request_counts[TOKEN_PATH]
        calls = api_calls(world)
        with within():
            for _ in range(3):
                await command(world, bot, "check 11260")
        messages = private(world)
        assert len(messages) == 3
        for message in messages:
            assert "an admin must reconnect" in message.lower()
            assert "ERR-" not in message  # not an unexpected error: no reference to chase
        assert world.qbo.request_counts[TOKEN_PATH] == refreshes + 1  # asked Intuit once
        assert api_calls(world) == calls + 1  # the one request that was refused
        lost = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.name for r in lost] == [QBO_LOG]  # logged once
        assert "reconnect" in lost[0].getMessage()

        # Work that does not need QuickBooks still runs.
        await command(world, bot, "resync company 58")
        assert "company 58 finished" in " ".join(thread_texts(world, last_root(world).ts))
        assert world.qbo.request_counts[TOKEN_PATH] == refreshes + 1
        await assert_nothing_left(bot)


async def test_a_resync_whose_verification_meets_a_revoked_connection_says_so_in_the_thread(
    world: SandboxWorld, tmp_path: Path
) -> None:
    async with fault_bot(world, tmp_path) as bot:
        await command(world, bot, "check 11260")
        world.portal.record_resync_seconds = 0.5
        await world.emulator.click(world.emulator.number_of("Resync invoice"))
        async with asyncio.timeout(10):  # the guard has read QuickBooks and the portal resyncs
            while world.portal.request_count("POST", "/api/v1/record-resyncs") == 0:
                await asyncio.sleep(0.02)
        world.qbo.revoke(BOT_CLIENT[0])  # ...and the bot cannot verify
        await settle(world, bot)
        texts = thread_texts(world, last_root(world).ts)
        assert "stopped" in texts[-1] and "must be reconnected by an admin" in texts[-1]
        assert world.portal.invoices["11260"].balance == world.qbo.invoice("11260").balance
        await assert_nothing_left(bot)


async def test_reconnecting_with_a_new_refresh_token_restores_the_bot(
    world: SandboxWorld, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    async with fault_bot(world, tmp_path, database_url=url) as bot:
        world.qbo.revoke(BOT_CLIENT[0])
        await command(world, bot, "check 11260")
        assert "an admin must reconnect" in private(world)[-1].lower()
    # The admin connects the app again and configures the new refresh token.
    new_token = world.qbo.register_client(*BOT_CLIENT)
    async with fault_bot(world, tmp_path, database_url=url, qbo_refresh_token=new_token) as bot:
        await command(world, bot, "check 11003")
        assert "In sync" in str(last_root(world).blocks)
        await assert_nothing_left(bot)


def test_a_refused_token_is_replaced_only_by_another_configured_one() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    live = TokenSet(access_token="a", access_token_expires_at=now, refresh_token="old-token")
    dead = live.model_copy(update={"refresh_token_expires_at": DEAD})
    assert needs_seed(None, "seed-token", now)
    assert not needs_seed(None, None, now)
    assert not needs_seed(live, "seed-token", now)  # rotated since the seed: keep it
    assert needs_seed(dead, "seed-token", now)  # refused, and the admin set a new one
    assert not needs_seed(dead, "old-token", now)  # the same refused token again: no
    assert is_dead(dead, now) and not is_dead(live, now)


async def test_a_resync_whose_guard_meets_a_revoked_connection_sends_nothing(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """The guard cannot re-read QuickBooks: nothing reaches the portal, and the person is
    told why (an admin must reconnect), not to try again."""
    async with fault_bot(world, tmp_path) as bot:
        await command(world, bot, "check 11260")
        world.qbo.revoke(BOT_CLIENT[0])
        await click(world, bot, "Resync invoice")
        assert world.portal.request_count("POST", "/api/v1/record-resyncs") == 0
        said = private(world)[-1]
        assert "nothing was sent to the portal" in said and "reconnected by an admin" in said
        assert "Try again" not in said
        await assert_nothing_left(bot)
