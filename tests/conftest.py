"""Shared fixtures: a fresh database per test (SQLite, or PostgreSQL with TEST_DATABASE_URL),
and fixed random seeds (``TEST_SEED``, printed in the header; Hypothesis derandomized)."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from services.storage.db import Database
from tests.databases import drop_leftovers, fresh_database

SEED = int(os.environ.get("TEST_SEED", "20261206"))
# The same examples on every run (a failure reproduces as is); TEST_SEED varies the rest.
settings.register_profile("fixed", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))


def pytest_report_header() -> str:
    return f"random seed: {SEED} (TEST_SEED to change it); hypothesis: derandomized"


@pytest.fixture(autouse=True)
def _fixed_seed() -> None:
    random.seed(SEED)


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
