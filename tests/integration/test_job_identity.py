"""A replica's stable name (bot.identity), job claims on an injected clock, and the job
outbox (services.storage.outbox). SQLite, or PostgreSQL with TEST_DATABASE_URL."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from bot.identity import is_dead, new_holder, release_identity, take_identity
from services.jobs import JobKind
from services.models import RecordType
from services.storage.claims import ClaimLost
from services.storage.db import Database
from services.storage.jobs import SqlJobStore
from services.storage.outbox import JobMessages

LEASE = timedelta(seconds=10)
T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def test_a_restarted_slot_takes_its_name_back_at_once(db: Database) -> None:
    clock = Clock()
    first = await take_identity(db, replica_id="slot-1", ttl=LEASE, clock=clock)
    assert (first.name, first.owns_name) == ("slot-1", True)
    # The same name while its holder lives: a unique name, never a shared one.
    twin = await take_identity(db, replica_id="slot-1", ttl=LEASE, clock=clock)
    assert twin.name.startswith("slot-1:") and not twin.owns_name
    # The holder died (its lease still runs): the next process of the slot has it at once.
    died = await take_identity(
        db, replica_id="slot-1", ttl=LEASE, clock=clock, dead=lambda h: h == first.holder
    )
    assert (died.name, died.owns_name) == ("slot-1", True)
    # A holder nobody can vouch for (another host) keeps it until its lease runs out.
    other = await take_identity(db, replica_id="slot-1", ttl=LEASE, clock=clock)
    assert not other.owns_name
    clock.now += LEASE
    late = await take_identity(db, replica_id="slot-1", ttl=LEASE, clock=clock)
    assert (late.name, late.owns_name) == ("slot-1", True)
    await release_identity(db, late)
    again = await take_identity(db, replica_id="slot-1", ttl=LEASE, clock=clock)
    assert again.owns_name


def test_only_a_holder_of_this_host_is_known_dead() -> None:
    mine = new_holder()
    host = mine.split(":", 1)[0]
    assert is_dead(mine)  # this pid, not a live holder of this process
    assert not is_dead(f"{host}:{os.getppid()}:abc")  # a running process
    assert is_dead(f"{host}:{2**22 + 12345}:abc")  # above Linux's pid_max: never running
    assert not is_dead(f"another-host:{os.getpid()}:abc")


async def create(store: SqlJobStore, target: str = "11260") -> str:
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


async def test_claims_run_out_on_the_injected_clock(db: Database) -> None:
    clock = Clock()
    a = SqlJobStore(db, worker="a", lease=LEASE, clock=clock)
    b = SqlJobStore(db, worker="b", lease=LEASE, clock=clock)
    job_id = await create(a)
    assert await b.claim_due() == []
    clock.now += LEASE - timedelta(seconds=1)
    assert await a.renew(job_id=job_id)
    clock.now += timedelta(seconds=9)
    assert await b.claim_due() == []  # renewed: still a's
    assert [c.job.id for c in await a.claim_due(own=True)] == [job_id]  # a, restarted
    clock.now += LEASE
    [claim] = await b.claim_due()
    assert (claim.job.id, claim.attempts) == (job_id, 3)
    assert not await a.renew(job_id=job_id)


async def test_the_outbox_keeps_one_row_per_role_for_the_claim_holder(db: Database) -> None:
    a = SqlJobStore(db, worker="a", lease=LEASE)
    job_id = await create(a)
    outbox = JobMessages(db)
    assert await outbox.get(job_id=job_id, role="outcome") is None
    first = await outbox.intend(job_id=job_id, role="outcome", worker="a")
    again = await outbox.intend(job_id=job_id, role="outcome", worker="a")
    assert first == again and first.ts is None
    await outbox.record(job_id=job_id, role="outcome", ts="2.0")
    intended = await outbox.intend(job_id=job_id, role="outcome", worker="a")
    assert intended.ts == "2.0"
    with pytest.raises(ClaimLost):
        await outbox.intend(job_id=job_id, role="progress", worker="b")
    assert [m.role for m in await outbox.of_job(job_id)] == ["outcome"]
