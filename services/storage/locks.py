"""A lock across processes: a PostgreSQL advisory lock held on a dedicated connection, or,
on SQLite, a short lease row renewed while held (a crashed holder's row expires)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.storage import leases
from services.storage.db import Database, lock_key

log = logging.getLogger(__name__)
POLL = 0.05
ROW_TTL = timedelta(seconds=15)
"""How long a SQLite lock row outlives a holder that stopped renewing it."""


@asynccontextmanager
async def exclusive(db: Database, *, name: str, timeout: float = 60.0) -> AsyncIterator[None]:
    """Hold the lock called ``name`` for the block; TimeoutError after ``timeout`` seconds
    of waiting for it."""
    if db.dialect == "postgresql":
        async with _advisory(db, name, timeout):
            yield
        return
    holder = f"lock:{uuid.uuid4().hex[:16]}"
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with leases.hold(db, name=f"lock:{name}", holder=holder, ttl=ROW_TTL) as held:
            if held:
                yield
                return
        if asyncio.get_running_loop().time() >= deadline:
            raise TimeoutError(f"lock {name} not free within {timeout:g} s")
        await asyncio.sleep(POLL)


@asynccontextmanager
async def _advisory(db: Database, name: str, timeout: float) -> AsyncIterator[None]:
    key = {"key": lock_key(name)}
    deadline = asyncio.get_running_loop().time() + timeout
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        while not (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), key)).scalar():
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError(f"lock {name} not free within {timeout:g} s")
            await asyncio.sleep(POLL)
        try:
            yield
        finally:
            unlocking = asyncio.ensure_future(_unlock(conn, key))
            try:
                await asyncio.shield(unlocking)
            except asyncio.CancelledError:
                await unlocking  # unlocked before the connection goes back to the pool
                raise


async def _unlock(conn: AsyncConnection, key: dict[str, int]) -> None:
    try:
        await conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
    except Exception:
        # A connection that may still hold the lock must not go back to the pool.
        log.warning("advisory unlock failed: closing the connection", exc_info=True)
        await conn.invalidate()
