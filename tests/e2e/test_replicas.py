"""Several real bot processes on one database (a fresh PostgreSQL database when
TEST_DATABASE_URL is set, else one SQLite file): every job runs in exactly one of them, one
process holds a lease at a time, and one refreshes the QBO token for all."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.demo import SandboxWorld, sandbox_world
from services.jobs import Job, JobKind, JobState, Outcome
from services.models import RecordType, utcnow
from services.storage import leases
from services.storage.db import Database
from services.storage.jobs import SqlJobStore
from tests.processes import bot_env, free_port, start_bot, stop
from tests.replicas_support import (
    CHANNEL,
    RECORD_RESYNCS,
    all_go,
    all_jobs,
    claims,
    outcome_messages,
    post_root,
    workers,
)

pytestmark = pytest.mark.slow


@pytest.fixture
async def world() -> AsyncIterator[SandboxWorld]:
    async with sandbox_world(sync_seconds=0.5, record_resync_seconds=0.5) as w:
        yield w


async def orphan_jobs(world: SandboxWorld, database_url: str, numbers: list[str]) -> None:
    """Jobs queued by a replica that died before running them (its claim already over)."""
    db = Database(database_url)
    ghost = SqlJobStore(db, worker="ghost", lease=timedelta(0))
    try:
        for number in numbers:
            root = await post_root(world, f"Resync of {number}")
            await ghost.create(
                kind=JobKind.RECORD,
                record_type=RecordType.INVOICE,
                target=number,
                invoice=number,
                requested_by="U0ALICE001",
                channel=CHANNEL,
                thread_ts=root,
            )
    finally:
        await db.dispose()


async def test_jobs_spread_over_replicas_each_run_exactly_once(
    world: SandboxWorld, database_url: str
) -> None:
    ports = [free_port(), free_port()]
    # Nothing is killed here: the default lease, so that a heartbeat late on a loaded
    # machine does not move a job (the orphans' claims have run out already).
    envs = [
        bot_env(world, database_url, port) | {"REPLICA_ID": f"r{i}", "JOB_LEASE_SECONDS": "10"}
        for i, port in enumerate(ports)
    ]
    replicas = await asyncio.gather(*(start_bot(env) for env in envs))  # both migrate at once
    clicked = [str(11000 + i) for i in range(6)]
    orphans = [str(11100 + i) for i in range(6)]
    try:
        await orphan_jobs(world, database_url, orphans)
        for i, number in enumerate(clicked):
            world.emulator.request_url = f"http://127.0.0.1:{ports[i % 2]}/slack/events"
            await world.emulator.send_command("/invoice", f"resync {number}")
        jobs: list[Job] = []

        async def finished() -> bool:
            nonlocal jobs
            jobs = await all_jobs(database_url)
            return len(jobs) == 12 and all(j.state.finished for j in jobs)

        for _ in range(300):
            if await finished() and all(outcome_messages(world, j) for j in jobs):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # a second run of any job would show by now
    finally:
        await asyncio.gather(*(stop(r) for r in replicas))

    jobs = await all_jobs(database_url)
    assert sorted(j.target for j in jobs) == sorted(clicked + orphans)
    assert all(j.state is JobState.DONE and j.outcome is Outcome.FIXED for j in jobs)
    assert {j.target: outcome_messages(world, j) for j in jobs} == {j.target: 1 for j in jobs}
    per_invoice = Counter(r.record_id for r in world.portal.resyncs.values())
    assert per_invoice == Counter(clicked + orphans)
    assert world.portal.request_count("POST", RECORD_RESYNCS) == 12
    ran = await claims(database_url)
    assert {ran[n] for n in clicked} == {("r0", 1), ("r1", 1)}  # each ran where it landed
    assert {ran[n][0] for n in orphans} <= {"r0", "r1"}


LEASE_TTL = 6.0
"""Seconds: more than the holder's crash and the others' next try take on a loaded machine
(they must find the lease still held), short enough to wait for it to run out."""


async def lease_runs_out(database_url: str, name: str, timeout: float = 30) -> None:
    db = Database(database_url)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await leases.current(db, name=name) is not None:
            assert loop.time() < deadline, "the dead holder's lease did not run out"
            await asyncio.sleep(0.1)
    finally:
        await db.dispose()


async def test_one_lease_holder_among_processes_and_none_after_a_crash(
    world: SandboxWorld, database_url: str
) -> None:
    env = bot_env(world, database_url, 0)
    name = f"digest:{utcnow().date().isoformat()}"
    async with workers(env, "lease", name, str(LEASE_TTL), count=3) as racers:
        answers = await all_go(racers)
        assert sum(a.startswith("won") for a in answers) == 1, answers
        winner = racers[[a.startswith("won") for a in answers].index(True)]
        again = await all_go(racers)  # the holder extends it, nobody else gets it
        assert [a.startswith("won") for a in again] == [a.startswith("won") for a in answers]

        winner.process.send_signal(signal.SIGKILL)  # the holder crashes, holding the lease
        await winner.process.wait()
        others = [r for r in racers if r is not winner]
        assert not any(a.startswith("won") for a in await all_go(others))
        await lease_runs_out(database_url, name)
        after = await all_go(others)
        assert sum(a.startswith("won") for a in after) == 1, after


async def test_processes_refresh_the_rotating_token_once(
    world: SandboxWorld, database_url: str
) -> None:
    assert world.qbo.knobs.rotate_refresh_tokens
    env = bot_env(world, database_url, 0)
    oauth = world.qbo.oauth
    async with workers(env, "token", count=3) as processes:
        before = oauth.refresh_count
        assert await all_go(processes) == ["ok True"] * 3  # nobody had an access token
        assert oauth.refresh_count == before + 1

        world.qbo.expire_access_tokens()  # QBO refuses every access token now
        assert await all_go(processes) == ["ok True"] * 3
        assert oauth.refresh_count == before + 2  # one refresh, no invalid_grant

        assert await all_go(processes) == ["ok True"] * 3
        assert oauth.refresh_count == before + 2
    assert world.qbo.request_counts["/oauth2/v1/tokens/bearer"] == 2
