"""Shared fixtures: a fresh database per test (SQLite, or PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.storage.db import Database
from tests.databases import drop_leftovers, fresh_database


@pytest.fixture(scope="session", autouse=True)
def _drop_leftover_databases() -> Iterator[None]:
    yield
    drop_leftovers()


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file, or a new PostgreSQL database (TEST_DATABASE_URL)."""
    async with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated database."""
    database = Database(database_url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()
