"""Fresh databases for tests: a SQLite file by default, or a new PostgreSQL database on the
server TEST_DATABASE_URL points at (created for the test, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from services.storage.db import async_url

CREATED: set[str] = set()
"""PostgreSQL databases created and not dropped yet (dropped at the end of the session)."""


def on_postgres() -> bool:
    return bool(os.environ.get("TEST_DATABASE_URL"))


def _base() -> str:
    return async_url(os.environ["TEST_DATABASE_URL"])


async def create_database(folder: Path) -> str:
    """The URL of a new empty database (no tables: the bot's migrations create them)."""
    if not on_postgres():
        return f"sqlite+aiosqlite:///{folder / 'bot.db'}"
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(_base(), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    CREATED.add(name)
    return _base().rsplit("/", 1)[0] + "/" + name


async def drop_database(url: str) -> None:
    if not on_postgres():
        return
    name = url.rsplit("/", 1)[1]
    admin = create_async_engine(_base(), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
    CREATED.discard(name)


def drop_leftovers() -> None:
    """Drop what tests created without dropping (synchronously: at the end of the session)."""
    if not on_postgres() or not CREATED:
        return
    admin = create_engine(_base(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in sorted(CREATED):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
    CREATED.clear()


@asynccontextmanager
async def fresh_database(folder: Path) -> AsyncIterator[str]:
    url = await create_database(folder)
    try:
        yield url
    finally:
        await drop_database(url)
