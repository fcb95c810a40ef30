"""Named leases shared by the replicas (the ``leases`` table): one holder at a time, taken
atomically, and lost when it expires, so a crashed holder cannot keep one forever.

    async with leases.hold(db, name=f"digest:{day}", holder=worker, ttl=timedelta(minutes=1)) as held:
        if not held:
            return  # another replica has it
        ...  # renewed in the background while the block runs

Keyword-only functions; times come from ``clock`` (``services.models.utcnow`` by default;
replicas' clocks are assumed to agree to well within a lease's length), and the waits
between renewals from ``sleep`` (``asyncio.sleep``), so that tests can drive both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.models import utcnow
from services.storage.db import Database
from services.storage.tables import LeaseRow

log = logging.getLogger(__name__)
TABLE = LeaseRow.__table__  # type: ignore[attr-defined]


class LeaseLost(Exception):
    """The lease expired and another holder took it while the block was still running."""


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    expires_at: datetime


Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


async def acquire(
    db: Database, *, name: str, holder: str, ttl: timedelta, clock: Clock = utcnow
) -> bool:
    """Take the lease if it is free, expired or already ``holder``'s (then it is extended).
    One statement (INSERT ... ON CONFLICT DO UPDATE ... WHERE), so two replicas racing for
    it cannot both win."""
    now = clock()
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    statement = (
        insert(TABLE)
        .values(name=name, holder=holder, expires_at=now + ttl)
        .on_conflict_do_update(
            index_elements=[TABLE.c.name],
            set_={"holder": holder, "expires_at": now + ttl},
            where=(TABLE.c.expires_at <= now) | (TABLE.c.holder == holder),
        )
        .returning(TABLE.c.holder)
    )
    async with db.engine.begin() as conn:
        row = (await conn.execute(statement)).first()
    return row is not None and row.holder == holder


async def renew(
    db: Database, *, name: str, holder: str, ttl: timedelta, clock: Clock = utcnow
) -> bool:
    """Extend the lease; False if ``holder`` does not hold it any more."""
    statement = (
        update(TABLE)
        .where(TABLE.c.name == name, TABLE.c.holder == holder)
        .values(expires_at=clock() + ttl)
    )
    async with db.engine.begin() as conn:
        result = await conn.execute(statement)
    return result.rowcount == 1


async def release(db: Database, *, name: str, holder: str) -> bool:
    """Give the lease up (only ``holder`` can); True if it was held."""
    statement = delete(TABLE).where(TABLE.c.name == name, TABLE.c.holder == holder)
    async with db.engine.begin() as conn:
        result = await conn.execute(statement)
    return result.rowcount == 1


async def take_over(
    db: Database, *, name: str, holder: str, previous: str, ttl: timedelta, clock: Clock = utcnow
) -> bool:
    """Take the lease from ``previous`` whatever its expiry (a holder known to be dead)."""
    statement = (
        update(TABLE)
        .where(TABLE.c.name == name, TABLE.c.holder == previous)
        .values(holder=holder, expires_at=clock() + ttl)
    )
    async with db.engine.begin() as conn:
        result = await conn.execute(statement)
    return result.rowcount == 1


async def current(db: Database, *, name: str, clock: Clock = utcnow) -> Lease | None:
    """The live lease of that name, if any."""
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(
                select(TABLE.c.holder, TABLE.c.expires_at).where(TABLE.c.name == name)
            )
        ).first()
    if row is None or row.expires_at <= clock():
        return None
    return Lease(name=name, holder=row.holder, expires_at=row.expires_at)


@contextlib.asynccontextmanager
async def hold(
    db: Database,
    *,
    name: str,
    holder: str,
    ttl: timedelta,
    keep_for: timedelta | None = None,
    clock: Clock = utcnow,
    sleep: Sleep = asyncio.sleep,
) -> AsyncIterator[bool]:
    """Yield True while holding the lease (renewed every ttl/3 in the background), False if
    another holder has it. On leaving: released, or, when ``keep_for`` is given and the block
    ended without an error, kept that long (e.g. "today's digest is done" for the rest of
    the day). If the lease is lost meanwhile, the block is cancelled and LeaseLost raised."""
    if not await acquire(db, name=name, holder=holder, ttl=ttl, clock=clock):
        yield False
        return
    task = asyncio.current_task()
    assert task is not None
    lost = asyncio.Event()

    async def keep() -> None:
        reason = await keep_renewed(
            lambda: renew(db, name=name, holder=holder, ttl=ttl, clock=clock),
            ttl=ttl,
            clock=clock,
            sleep=sleep,
            what=f"lease {name}",
        )
        log.warning("lease %s lost (%s): stopping its holder", name, reason)
        lost.set()
        task.cancel()

    renewer = asyncio.create_task(keep())
    ok = False
    try:
        yield True
        ok = True
    except asyncio.CancelledError:
        if lost.is_set() and task.uncancel() == 0:
            raise LeaseLost(name) from None
        raise
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        if not lost.is_set():
            await asyncio.shield(_leave(db, name, holder, keep_for if ok else None, clock))


async def keep_renewed(
    renew: Callable[[], Awaitable[bool]],
    *,
    ttl: timedelta,
    clock: Clock,
    sleep: Sleep,
    what: str,
    margin: timedelta = timedelta(0),
) -> str:
    """Renew a lease of length ``ttl`` every ttl/3 for as long as it is held; return why
    it is not any more: ``renew`` said so (another holder has it), or renewing failed until
    less than ``margin`` was left of the last renewal (the lease may have run out)."""
    deadline = clock() + ttl
    while True:
        await sleep(ttl.total_seconds() / 3)
        asked = clock()
        try:
            if await renew():
                deadline = asked + ttl  # the renewed lease runs from about then
                continue
            return "another holder has it"
        except Exception:
            log.warning("could not renew %s", what, exc_info=True)
            if clock() < deadline - margin:
                continue
            return "it could not be renewed in time"


async def _leave(
    db: Database, name: str, holder: str, keep_for: timedelta | None, clock: Clock
) -> None:
    try:
        if keep_for is None:
            await release(db, name=name, holder=holder)
        else:
            await renew(db, name=name, holder=holder, ttl=keep_for, clock=clock)
    except Exception:
        log.warning("could not release lease %s (it expires by itself)", name, exc_info=True)
