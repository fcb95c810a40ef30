"""Job store: once-only active jobs, claims, heartbeats, fencing (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.jobs import AlreadyRunning, InvalidTransition, JobKind, JobState, Outcome
from services.models import RecordType
from services.storage.db import Database
from services.storage.jobs import ClaimLost, SqlJobStore
from tests.fake_time import FakeTime

SHORT = timedelta(milliseconds=300)


async def new_job(store: SqlJobStore, target: str = "11260") -> str:
    job = await store.create(
        kind=JobKind.RECORD,
        record_type=RecordType.INVOICE,
        target=target,
        invoice=target,
        requested_by="U1",
        channel="C1",
        thread_ts="1.0",
    )
    return job.id


async def test_one_unfinished_job_per_target(db: Database) -> None:
    store = SqlJobStore(db)
    job_id = await new_job(store)
    with pytest.raises(AlreadyRunning) as caught:
        await new_job(store)
    assert caught.value.job.id == job_id
    await store.update(job_id=job_id, state=JobState.RUNNING)
    await store.finish(job_id=job_id, outcome=Outcome.FIXED)
    assert await new_job(store) != job_id  # finished: the target is free again


async def test_a_new_job_is_claimed_by_its_creator(db: Database) -> None:
    a, b = SqlJobStore(db, worker="a"), SqlJobStore(db, worker="b")
    job_id = await new_job(a)
    assert await b.claim(job_id=job_id) is None
    assert await b.claim_due() == []
    with pytest.raises(ClaimLost):
        await b.update(job_id=job_id, state=JobState.RUNNING)
    assert (await a.update(job_id=job_id, state=JobState.RUNNING)).state is JobState.RUNNING


def two_workers(db: Database, time: FakeTime) -> tuple[SqlJobStore, SqlJobStore]:
    """Workers a and b on the same fake clock, with short claims."""
    a = SqlJobStore(db, worker="a", lease=SHORT, clock=time.clock)
    return a, SqlJobStore(db, worker="b", lease=SHORT, clock=time.clock)


async def test_an_expired_claim_moves_to_another_worker_and_fences_the_first(
    db: Database,
) -> None:
    time = FakeTime()
    a, b = two_workers(db, time)
    job_id = await new_job(a)
    time.advance(0.2)
    assert await b.claim_due() == []  # a's claim still runs
    time.advance(0.2)
    [claim] = await b.claim_due()
    assert claim.job.id == job_id and claim.attempts == 2
    assert not await a.renew(job_id=job_id)
    with pytest.raises(ClaimLost):
        await a.finish(job_id=job_id, outcome=Outcome.FIXED)
    assert await b.renew(job_id=job_id)
    done = await b.finish(job_id=job_id, outcome=Outcome.ERROR, detail="x")
    assert done.state is JobState.FAILED and done.detail == "x"
    time.advance(0.4)
    assert await a.claim_due() == []  # finished jobs are never claimed again


async def test_renewal_keeps_a_live_job(db: Database) -> None:
    time = FakeTime()
    a, b = two_workers(db, time)
    job_id = await new_job(a)
    for _ in range(4):  # 0.6 s in all: twice the lease
        time.advance(0.15)
        assert await a.renew(job_id=job_id)
        assert await b.claim(job_id=job_id) is None
    time.advance(0.3)  # no renewal for a whole lease: b may take it
    assert await b.claim(job_id=job_id) is not None


async def test_a_released_job_is_due_at_once(db: Database) -> None:
    a, b = SqlJobStore(db, worker="a"), SqlJobStore(db, worker="b")
    job_id = await new_job(a)
    assert await a.release(job_id=job_id)
    [claim] = await b.claim_due()
    assert claim.job.id == job_id


async def test_the_sweep_skips_jobs_the_worker_runs(db: Database) -> None:
    a = SqlJobStore(db, worker="a", lease=timedelta(0))
    first, second = await new_job(a, "11260"), await new_job(a, "11261")
    claims = await a.claim_due(skip={first})
    assert [c.job.id for c in claims] == [second]


async def test_racing_sweepers_claim_each_job_once(db: Database) -> None:
    creator = SqlJobStore(db, worker="creator", lease=timedelta(0))
    ids = {await new_job(creator, str(11000 + i)) for i in range(12)}
    workers = [SqlJobStore(db, worker=f"w{i}") for i in range(4)]
    results = await asyncio.gather(*(w.claim_due(limit=50) for w in workers))
    claimed = [c.job.id for claims in results for c in claims]
    assert sorted(claimed) == sorted(ids)


async def test_a_concurrent_state_change_is_not_lost(db: Database) -> None:
    store = SqlJobStore(db)
    job_id = await new_job(store)
    await store.update(job_id=job_id, state=JobState.RUNNING, portal_ref="rr-1")
    updated = await store.update(job_id=job_id, progress_ts="2.0")
    assert updated.portal_ref == "rr-1" and updated.state is JobState.RUNNING
    with pytest.raises(ValueError):
        await store.update(job_id=job_id, claimed_by="x")
    with pytest.raises(LookupError):
        await store.update(job_id="missing", progress_ts="1")


async def test_only_explicit_transitions(db: Database) -> None:
    store = SqlJobStore(db)
    job_id = await new_job(store)
    with pytest.raises(InvalidTransition):
        await store.update(job_id=job_id, state=JobState.VERIFYING)  # queued -> verifying
    await store.update(job_id=job_id, state=JobState.RUNNING)
    done = await store.finish(job_id=job_id, outcome=Outcome.FIXED)
    assert done.state is JobState.DONE and done.finished_at is not None
    with pytest.raises(InvalidTransition):
        await store.update(job_id=job_id, state=JobState.RUNNING)
    with pytest.raises(InvalidTransition):
        await store.finish(job_id=job_id, outcome=Outcome.ERROR)
