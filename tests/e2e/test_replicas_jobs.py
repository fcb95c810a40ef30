"""Job claims between two bots in one process on one database: the heartbeat keeps a live
job with its replica, a replica shutting down hands its jobs over at once, and a job that
keeps losing its replica is ended with a message instead of being retried for ever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import select

from bot.demo import SandboxWorld, running_bot, sandbox_world
from sandbox.slack.emulator import SlackEmulator
from services.adapters.portal import PortalClient
from services.jobs import JobKind, JobState, Outcome
from services.models import RecordType, utcnow
from services.storage.db import Database
from services.storage.jobs import SqlJobStore
from services.storage.tables import JobRow
from tests.e2e.conftest import press_guard_question
from tests.processes import until
from tests.replicas_support import CHANNEL, post_root

FAST: dict[str, Any] = {"resync_poll_seconds": 0.05, "slack_channel_interval_seconds": 0.02}
SYNCS = "/api/v1/integrations/"


@pytest.fixture
async def world() -> AsyncIterator[SandboxWorld]:
    async with sandbox_world(sync_seconds=2.0, record_resync_seconds=0.1) as w:
        yield w


async def job_row(database_url: str) -> JobRow:
    db = Database(database_url)
    try:
        async with db.session() as session:
            [row] = list(await session.exec(select(JobRow)))
            return row
    finally:
        await db.dispose()


async def start_full_resync(world: SandboxWorld, url: str) -> None:
    world.emulator.request_url = url
    since = (utcnow() - timedelta(days=3)).date().isoformat()
    await world.emulator.send_command("/invoice", f"resync --since {since}")
    await press_guard_question(world.emulator)
    await until(lambda: any(r.status == "running" for r in world.portal.runs.values()))


async def test_the_heartbeat_keeps_a_live_job_with_its_replica(
    world: SandboxWorld, database_url: str
) -> None:
    short = {"job_lease_seconds": 0.6, "job_sweep_seconds": 0.1, **FAST}
    a = world.bot_settings(database_url=database_url, replica_id="a", **short)
    b = world.bot_settings(database_url=database_url, replica_id="b", **short)
    async with running_bot(a) as first, running_bot(b) as second:
        await start_full_resync(world, first.url)  # lasts 2 s: three leases and more
        await until(lambda: not first.container.tasks.busy, timeout=20)
        assert not second.container.tasks.busy
    row = await job_row(database_url)
    assert (row.state, row.claimed_by, row.attempts) == ("done", "a", 1)
    assert world.portal.request_count("POST", SYNCS) == 1


async def test_a_replica_shutting_down_hands_its_job_over_at_once(
    world: SandboxWorld, database_url: str
) -> None:
    slow = {"job_lease_seconds": 30.0, "job_sweep_seconds": 0.1, **FAST}
    a = world.bot_settings(database_url=database_url, replica_id="a", **slow)
    b = world.bot_settings(database_url=database_url, replica_id="b", **slow)
    async with running_bot(b) as second:
        async with running_bot(a) as first:
            await start_full_resync(world, first.url)
            await until(lambda: len(world.emulator.state.history(CHANNEL)) >= 1)
        # a is gone, well within its 30 s lease: b has the job already
        await until(lambda: second.container.tasks.busy, timeout=3)
        await until(lambda: not second.container.tasks.busy, timeout=20)
    row = await job_row(database_url)
    assert (row.state, row.claimed_by, row.attempts) == ("done", "b", 2)
    assert world.portal.request_count("POST", SYNCS) == 1  # b followed a's run
    texts = [str(m.blocks) for m in world.emulator.state.replies(CHANNEL, row.thread_ts)]
    assert sum("finished." in t for t in texts) == 1  # no invoice to verify: "finished."


async def test_a_job_that_keeps_losing_its_replica_is_ended_with_a_message(
    world: SandboxWorld, database_url: str
) -> None:
    db = Database(database_url)
    await db.upgrade()
    ghost = SqlJobStore(db, worker="ghost", lease=timedelta(0))
    try:
        job = await ghost.create(
            kind=JobKind.RECORD,
            record_type=RecordType.INVOICE,
            target="11260",
            invoice="11260",
            requested_by="U0ALICE001",
            channel=CHANNEL,
            thread_ts=await post_root(world, "Resync of 11260"),
        )
        for _ in range(2):  # two replicas took it and died
            assert await ghost.claim(job_id=job.id) is not None
    finally:
        await db.dispose()
    settings = world.bot_settings(database_url=database_url, job_max_attempts=3, **FAST)
    async with running_bot(settings) as bot:
        await until(lambda: not bot.container.tasks.busy, timeout=10)
    row = await job_row(database_url)
    assert (row.state, row.outcome, row.attempts) == (JobState.FAILED.value, Outcome.ERROR.value, 4)
    texts = [str(m.blocks) for m in world.emulator.state.replies(CHANNEL, job.thread_ts)]
    assert len(texts) == 1 and "The bot stopped 3 times while running it" in texts[0]
    assert world.portal.request_count("POST") == 0


async def crashed_job(database_url: str, world: SandboxWorld, **fields: Any) -> str:
    """A job whose replica asked the portal to resync (``portal_requested_at``) and died
    before it could save the request's id."""
    db = Database(database_url)
    await db.upgrade()
    ghost = SqlJobStore(db, worker="ghost", lease=timedelta(0))
    try:
        job = await ghost.create(
            requested_by="U0ALICE001",
            channel=CHANNEL,
            thread_ts=await post_root(world, "A resync"),
            **fields,
        )
        await ghost.update(job_id=job.id, state=JobState.RUNNING)
        await ghost.update(job_id=job.id, portal_requested_at=utcnow())
        return job.id
    finally:
        await db.dispose()


def portal_client(world: SandboxWorld) -> PortalClient:
    return PortalClient(base_url=world.portal_url, api_key=SecretStr(world.portal.api_key))


@pytest.mark.parametrize("reached_the_portal", [True, False])
async def test_a_record_resync_whose_id_was_lost_is_asked_for_once(
    world: SandboxWorld, database_url: str, reached_the_portal: bool
) -> None:
    invoice = {"invoice": "11260", "target": "11260"}
    await crashed_job(
        database_url, world, kind=JobKind.RECORD, record_type=RecordType.INVOICE, **invoice
    )
    if reached_the_portal:
        portal = portal_client(world)
        await portal.resync_record(RecordType.INVOICE, "11260")
        await portal.aclose()
        await world.portal.wait_idle()
    settings = world.bot_settings(
        database_url=database_url, resync_request_grace_seconds=0.5, **FAST
    )
    async with running_bot(settings) as bot:
        await until(lambda: not bot.container.tasks.busy, timeout=10)
    row = await job_row(database_url)
    assert (row.state, row.outcome) == ("done", "fixed")
    assert world.portal.request_count("POST", "/api/v1/record-resyncs") == 1
    assert world.portal.invoices["11260"].balance == world.qbo.invoice("11260").balance


async def test_a_full_resync_that_finished_while_nobody_held_it_is_not_run_again(
    world: SandboxWorld, database_url: str
) -> None:
    since = (utcnow() - timedelta(days=3)).date()
    integration = next(iter(world.portal.integrations))
    await crashed_job(
        database_url,
        world,
        kind=JobKind.FULL,
        record_type=RecordType.INVOICE,
        target=integration,
        integration_id=integration,
        sync_from=since,
    )
    portal = portal_client(world)
    await portal.start_sync(integration, sync_from=since)
    await portal.aclose()
    await world.portal.wait_idle()  # the run finished before another replica took the job
    async with running_bot(world.bot_settings(database_url=database_url, **FAST)) as bot:
        await until(lambda: not bot.container.tasks.busy, timeout=10)
    row = await job_row(database_url)
    assert (row.state, row.outcome) == ("done", "completed")
    assert world.portal.request_count("POST", SYNCS) == 1
    texts = [str(m.blocks) for m in world.emulator.state.replies(CHANNEL, row.thread_ts)]
    assert sum("Processed records" in t for t in texts) == 1


async def test_identical_commands_on_two_replicas_at_once_start_one_job(
    world: SandboxWorld, database_url: str
) -> None:
    """Only the unique key on unfinished jobs tells these apart: both replicas find no job
    running, check the invoice, and create one at the same moment."""
    world.portal.record_resync_seconds = 1.0
    a = world.bot_settings(database_url=database_url, replica_id="a", **FAST)
    b = world.bot_settings(database_url=database_url, replica_id="b", **FAST)
    emu = world.emulator
    twin = SlackEmulator(signing_secret=emu.signing_secret, state=emu.state)
    twin.base_url = emu.base_url  # the same workspace, sending to the other replica
    async with running_bot(a) as first, running_bot(b) as second:
        emu.request_url, twin.request_url = first.url, second.url
        sends = [e.send_command("/invoice", "resync 11260") for e in (emu, twin) for _ in range(2)]
        assert all(r.status == 200 for r in await asyncio.gather(*sends))
        await until(lambda: len(emu.state.ephemerals()) == 3, timeout=10)
        await until(lambda: not (first.container.tasks.busy or second.container.tasks.busy))
        await twin.stop()
    assert len(emu.state.history(CHANNEL)) == 1  # one thread, nothing posted and deleted
    assert emu.state.calls_to("chat.delete") == []
    assert world.portal.request_count("POST", "/api/v1/record-resyncs") == 1
    assert all("already" in m.text for m in emu.state.ephemerals())
