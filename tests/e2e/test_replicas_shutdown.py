"""A replica stopped with SIGTERM (a deploy, a scale-down) hands its running job to another
replica at once, instead of holding it until its claim runs out, and exits cleanly."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.demo import SandboxWorld, sandbox_world
from services.jobs import JobState
from services.models import utcnow
from tests.e2e.conftest import press_guard_question
from tests.processes import bot_env, free_port, start_bot, stop, until
from tests.replicas_support import all_jobs, claims

pytestmark = pytest.mark.slow
SYNCS = "/api/v1/integrations/"
LEASE = 30.0


@pytest.fixture
async def world() -> AsyncIterator[SandboxWorld]:
    async with sandbox_world(sync_seconds=2.0, record_resync_seconds=0.5) as w:
        yield w


async def test_sigterm_hands_the_running_job_over_and_exits_cleanly(
    world: SandboxWorld, database_url: str
) -> None:
    ports = free_port(), free_port()
    long_lease = {"JOB_LEASE_SECONDS": str(LEASE), "JOB_SWEEP_SECONDS": "0.2"}
    envs = [
        bot_env(world, database_url, p) | long_lease | {"REPLICA_ID": n}
        for p, n in zip(ports, "ab", strict=True)
    ]
    first, second = await start_bot(envs[0]), await start_bot(envs[1])
    try:
        world.emulator.request_url = f"http://127.0.0.1:{ports[0]}/slack/events"
        since = (utcnow() - timedelta(days=3)).date().isoformat()
        await world.emulator.send_command("/invoice", f"resync --since {since}")
        await press_guard_question(world.emulator)
        await until(lambda: any(r.status == "running" for r in world.portal.runs.values()))

        loop = asyncio.get_running_loop()
        stopped_at = loop.time()
        first.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.05)
        if first.returncode is None:
            first.send_signal(signal.SIGTERM)  # impatient: the hand-over still completes
        assert await asyncio.wait_for(first.wait(), 10) == 0  # a clean exit, not the signal

        async def done() -> bool:
            [job] = await all_jobs(database_url)
            return job.state is JobState.DONE

        while not await done():
            assert loop.time() - stopped_at < LEASE / 3, "the job waited for its lease"
            await asyncio.sleep(0.1)
    finally:
        await stop(first)
        await stop(second)
    [(holder, attempts)] = (await claims(database_url)).values()
    assert (holder, attempts) == ("b", 2)
    assert world.portal.request_count("POST", SYNCS) == 1  # b followed a's run, no second
