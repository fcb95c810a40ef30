"""The database's connections: on SQLite, one a process, which its sessions take in turn."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from services.storage.audit import AuditLog
from services.storage.db import Database


async def test_sqlite_writers_of_a_process_take_turns_on_one_connection(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'bot.db'}")
    await db.upgrade()
    audit = AuditLog(db)
    try:
        async with db.engine.begin() as conn:  # a write transaction under way
            await conn.execute(
                text(
                    "INSERT INTO audit_log (at, actor, action, target, outcome, detail) "
                    "VALUES (CURRENT_TIMESTAMP, 'a', 'check', '1', 'ok', '')"
                )
            )
            second = asyncio.create_task(audit.record(actor="b", action="check", outcome="ok"))
            for _ in range(20):
                await asyncio.sleep(0)
            # The second writer waits for the connection, not in SQLite's busy handler.
            assert not second.done() and db.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        await second
        writers = [audit.record(actor=f"u{i}", action="check", outcome="ok") for i in range(64)]
        await asyncio.gather(*writers)
        assert len(await audit.recent(limit=100)) == 66
    finally:
        await db.dispose()


async def test_an_in_memory_sqlite_database_keeps_its_own_pool(tmp_path: Path) -> None:
    memory = Database("sqlite+aiosqlite://")
    try:
        assert memory.engine.pool.__class__.__name__ == "StaticPool"
    finally:
        await memory.dispose()
