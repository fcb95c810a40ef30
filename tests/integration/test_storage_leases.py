"""Leases, cross-process locks and the shared token store (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.models import TokenSet
from services.storage import leases, locks
from services.storage.db import Database
from services.storage.tokens import DbTokenStore

SHORT = timedelta(milliseconds=300)


async def test_one_holder_at_a_time_until_it_expires(db: Database) -> None:
    assert await leases.acquire(db, name="digest:d1", holder="a", ttl=SHORT)
    assert not await leases.acquire(db, name="digest:d1", holder="b", ttl=SHORT)
    assert await leases.acquire(db, name="digest:d1", holder="a", ttl=SHORT)  # extended
    assert await leases.acquire(db, name="digest:d2", holder="b", ttl=SHORT)
    held = await leases.current(db, name="digest:d1")
    assert held is not None and held.holder == "a"
    await asyncio.sleep(0.35)
    assert await leases.current(db, name="digest:d1") is None
    assert await leases.acquire(db, name="digest:d1", holder="b", ttl=SHORT)  # a crashed
    assert not await leases.renew(db, name="digest:d1", holder="a", ttl=SHORT)
    assert not await leases.release(db, name="digest:d1", holder="a")
    assert await leases.release(db, name="digest:d1", holder="b")
    assert await leases.acquire(db, name="digest:d1", holder="a", ttl=SHORT)


async def test_racing_holders_get_one_winner(db: Database) -> None:
    won = await asyncio.gather(
        *(leases.acquire(db, name="race", holder=f"h{i}", ttl=SHORT) for i in range(10))
    )
    assert sum(won) == 1


async def test_hold_renews_while_the_block_runs_then_releases(db: Database) -> None:
    async with leases.hold(db, name="job", holder="a", ttl=SHORT) as held:
        assert held
        await asyncio.sleep(0.7)  # longer than the ttl: renewed meanwhile
        async with leases.hold(db, name="job", holder="b", ttl=SHORT) as other:
            assert not other
    assert await leases.current(db, name="job") is None


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
    with pytest.raises(leases.LeaseLost):
        async with leases.hold(db, name="x", holder="a", ttl=SHORT):
            await leases.release(db, name="x", holder="a")  # as if it had expired...
            # ...and b took it:
            assert await leases.acquire(db, name="x", holder="b", ttl=timedelta(1))
            await asyncio.sleep(2)
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
