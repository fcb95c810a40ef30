"""Leases, cross-process locks and the shared token store (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.models import TokenSet
from services.storage import leases, locks
from services.storage.db import Database
from services.storage.tokens import DbTokenStore
from tests.fake_time import START, FakeTime

SHORT = timedelta(milliseconds=300)


async def test_one_holder_at_a_time_until_it_expires(db: Database) -> None:
    time = FakeTime()
    clock = time.clock
    assert await leases.acquire(db, name="digest:d1", holder="a", ttl=SHORT, clock=clock)
    assert not await leases.acquire(db, name="digest:d1", holder="b", ttl=SHORT, clock=clock)
    time.advance(0.2)
    assert await leases.acquire(db, name="digest:d1", holder="a", ttl=SHORT, clock=clock)
    assert await leases.acquire(db, name="digest:d2", holder="b", ttl=SHORT, clock=clock)
    time.advance(0.2)  # past the first ttl, within the extended one
    held = await leases.current(db, name="digest:d1", clock=clock)
    assert held is not None and held.holder == "a"
    time.advance(0.1)
    assert await leases.current(db, name="digest:d1", clock=clock) is None
    assert await leases.acquire(db, name="digest:d1", holder="b", ttl=SHORT, clock=clock)
    assert not await leases.renew(db, name="digest:d1", holder="a", ttl=SHORT, clock=clock)
    assert not await leases.release(db, name="digest:d1", holder="a")
    assert await leases.release(db, name="digest:d1", holder="b")
    assert await leases.acquire(db, name="digest:d1", holder="a", ttl=SHORT, clock=clock)


async def test_racing_holders_get_one_winner(db: Database) -> None:
    won = await asyncio.gather(
        *(leases.acquire(db, name="race", holder=f"h{i}", ttl=SHORT) for i in range(10))
    )
    assert sum(won) == 1


async def test_hold_renews_while_the_block_runs_then_releases(db: Database) -> None:
    time = FakeTime(stop_after=7)  # six renewals, 100 ms apart: twice the ttl
    async with leases.hold(
        db, name="job", holder="a", ttl=SHORT, clock=time.clock, sleep=time.sleep
    ) as held:
        assert held
        await time.stopped()
        assert time.sleeps == [SHORT.total_seconds() / 3] * 7
        lease = await leases.current(db, name="job", clock=time.clock)
        assert lease is not None and lease.expires_at == START + 6 * SHORT / 3 + SHORT
        assert not await leases.acquire(db, name="job", holder="b", ttl=SHORT, clock=time.clock)
    assert await leases.current(db, name="job", clock=time.clock) is None


async def test_hold_can_keep_the_lease_after_success_only(db: Database) -> None:
    async with leases.hold(db, name="day", holder="a", ttl=SHORT, keep_for=timedelta(hours=1)):
        pass
    kept = await leases.current(db, name="day")
    assert kept is not None and kept.holder == "a"
    with pytest.raises(RuntimeError):
        async with leases.hold(db, name="other", holder="a", ttl=SHORT, keep_for=timedelta(1)):
            raise RuntimeError("digest failed")
    assert await leases.current(db, name="other") is None  # free for another try


async def test_a_stolen_lease_stops_its_holder(db: Database) -> None:
    stolen = asyncio.Event()
    beats: list[float] = []

    async def sleep(seconds: float) -> None:  # the next beat comes once b has the lease
        beats.append(seconds)
        await stolen.wait()

    with pytest.raises(leases.LeaseLost):
        async with leases.hold(db, name="x", holder="a", ttl=SHORT, sleep=sleep):
            await leases.release(db, name="x", holder="a")  # as if it had expired...
            # ...and b took it:
            assert await leases.acquire(db, name="x", holder="b", ttl=timedelta(1))
            stolen.set()
            await asyncio.wait_for(asyncio.Event().wait(), 30)  # cancelled at the next beat
    assert len(beats) == 1  # stopped at the first renewal
    held = await leases.current(db, name="x")
    assert held is not None and held.holder == "b"


async def test_exclusive_lock_admits_one_at_a_time(db: Database, database_url: str) -> None:
    other = Database(database_url)  # another "process": its own engine and pool
    inside: list[int] = []
    overlap = False

    async def work(database: Database, n: int) -> None:
        nonlocal overlap
        async with locks.exclusive(database, name="refresh"):
            inside.append(n)
            overlap |= len(inside) > 1
            await asyncio.sleep(0.05)
            inside.remove(n)

    try:
        await asyncio.gather(*(work(db if i % 2 else other, i) for i in range(6)))
        assert not overlap
        async with locks.exclusive(db, name="held"):
            with pytest.raises(TimeoutError):
                async with locks.exclusive(other, name="held", timeout=0.2):
                    pass
    finally:
        await other.dispose()


async def test_token_store_seeds_once_and_shares_the_newest(db: Database) -> None:
    old = TokenSet(
        access_token="",
        access_token_expires_at=datetime(1970, 1, 1, tzinfo=UTC),
        refresh_token="r1",
    )
    a = DbTokenStore(db, connection="qbo:1")
    b = DbTokenStore(db, connection="qbo:1")
    assert await a.seed(old)
    new = old.model_copy(update={"access_token": "x", "refresh_token": "r2"})
    async with a.refresh_lock():
        await a.save(new)
    assert not await b.seed(old)  # a late replica does not put the old token back
    assert await b.load() == new
    reconnected = old.model_copy(update={"refresh_token": "r9"})
    assert not await b.seed(reconnected, replacing="r1")  # r1 is not stored any more
    assert await b.load() == new
    assert await b.seed(reconnected, replacing="r2")
    assert await a.load() == reconnected
