"""Waiting is visible: a throttled QuickBooks or portal request that waits longer than
WAIT_NOTICE_SECONDS is told privately, with the time it is sent again; the answer follows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.demo import RunningBot, SandboxWorld, running_bot
from sandbox.qbo.state import FaultKind
from tests.e2e.conftest import FAST, channel_messages, settle

ALICE = "U0ALICE001"
PATIENT = {**FAST, "qbo_max_retry_wait_seconds": 5, "portal_max_retry_wait_seconds": 5}


@pytest.fixture
async def patient_bot(world: SandboxWorld, database_url: str) -> AsyncIterator[RunningBot]:
    """A bot that tells waits longer than 1 s (5 s in production), so the test waits 2 s."""
    settings = world.bot_settings(database_url=database_url, wait_notice_seconds=1, **PATIENT)
    async with running_bot(settings) as running:
        world.emulator.request_url = running.url
        yield running


async def test_a_quickbooks_throttle_is_told_then_the_answer_follows(
    world: SandboxWorld, patient_bot: RunningBot
) -> None:
    world.qbo.knobs.retry_after = 2
    world.qbo.inject(FaultKind.THROTTLE)
    await world.emulator.send_command("/invoice", "check 11260")
    await settle(world, patient_bot)
    [notice] = world.emulator.state.ephemerals(ALICE)
    assert notice.text.startswith("QuickBooks asked us to slow down; retrying at <!date^")
    assert "{time_secs}" in notice.text
    [answer] = channel_messages(world)
    assert "Out of sync by $10.00" in str(answer.blocks)
    assert float(notice.ts) < float(answer.ts)  # told first, the answer after, same channel
    assert notice.channel == answer.channel


async def test_a_portal_throttle_is_told_and_a_short_one_is_not(
    world: SandboxWorld, patient_bot: RunningBot
) -> None:
    world.portal.inject(429, retry_after=1)  # not longer than the setting: silent
    await world.emulator.send_command("/invoice", "check 11260")
    await settle(world, patient_bot)
    assert world.emulator.state.ephemerals(ALICE) == []
    world.portal.inject(429, retry_after=2)
    await world.emulator.send_command("/invoice", "check 11260")
    await settle(world, patient_bot)
    [notice] = world.emulator.state.ephemerals(ALICE)
    assert notice.text.startswith("The portal asked us to slow down; retrying at")
    assert len(channel_messages(world)) == 2


async def test_a_resync_jobs_wait_is_told_in_its_thread(
    world: SandboxWorld, patient_bot: RunningBot
) -> None:
    world.portal.inject(429, retry_after=2, path="/api/v1/record-resyncs")
    await world.emulator.send_command("/invoice", "resync 11260")
    await settle(world, patient_bot)
    [root] = channel_messages(world)
    [notice] = world.emulator.state.ephemerals(ALICE)
    assert notice.text.startswith("The portal asked us to slow down; retrying at <!date^")
    assert notice.thread_ts == root.ts  # where the job's progress and outcome are
    assert world.portal.request_count("POST", "/api/v1/record-resyncs") == 2
