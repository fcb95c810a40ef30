"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlmodel import SQLModel

from services.storage.db import Database, head_revision

TABLES = {"oauth_tokens", "audit_log", "resync_jobs", "digest_runs", "leases"}


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrations_match_the_models(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert await db.revision() is None
        await db.upgrade()
        assert await db.revision() == head_revision()
        async with db.engine.connect() as conn:
            assert await conn.run_sync(table_names) >= TABLES
            assert await conn.run_sync(differences) == []
    finally:
        await db.dispose()


async def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(d.upgrade() for d in databases))
        assert {await d.revision() for d in databases} == {head_revision()}
        await databases[0].upgrade()  # at head already: nothing to do
    finally:
        for d in databases:
            await d.dispose()


async def test_downgrade_removes_every_table(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.upgrade()
        await db.downgrade("base")
        async with db.engine.connect() as conn:
            assert not (TABLES & await conn.run_sync(table_names))
        await db.upgrade()
        assert await db.revision() == head_revision()
    finally:
        await db.dispose()
