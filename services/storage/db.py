"""Engine and sessions. SQLite by default; PostgreSQL through DATABASE_URL. The schema is
created and upgraded by the Alembic migrations in ``migrations/`` (``Database.upgrade``)."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from services.storage import tables  # noqa: F401  (registers the tables)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def async_url(url: str) -> str:
    """Accept plain URLs and pick the async driver."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` derived from a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class Database:
    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.engine: AsyncEngine = _engine(self.url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def upgrade(self, revision: str = "head") -> None:
        """Create or upgrade the schema. Replicas starting together migrate one at a time
        (an advisory lock on PostgreSQL, a lock file next to a SQLite database)."""
        async with self._migration_lock(), self.engine.connect() as conn:
            await conn.run_sync(_migrate, command.upgrade, revision)
            await conn.commit()

    async def downgrade(self, revision: str) -> None:
        """Undo migrations down to ``revision`` ("base": drop every table)."""
        async with self._migration_lock(), self.engine.connect() as conn:
            await conn.run_sync(_migrate, command.downgrade, revision)
            await conn.commit()

    async def revision(self) -> str | None:
        """The schema revision the database is at (None before the first upgrade)."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def _migration_lock(self) -> AsyncIterator[None]:
        if self.dialect == "postgresql":
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                key = {"key": lock_key("invoicebot:migrations")}
                await conn.execute(text("SELECT pg_advisory_lock(:key)"), key)
                try:
                    yield
                finally:
                    await conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
            return
        path = self.engine.url.database
        if self.dialect != "sqlite" or not path or path == ":memory:":
            yield
            return
        with _lock_file(Path(path).with_name(Path(path).name + ".migrate-lock")) as fd:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield


def _engine(url: str) -> AsyncEngine:
    """SQLite: one connection a process, which its sessions take in turn (SQLite writes one
    at a time anyway). With a connection each, a process's writers wait for the write lock
    in SQLite's busy handler, which retries on a timer and serves nobody in order: with
    dozens at once and a busy event loop, some waited past the 5 s busy timeout ("database
    is locked"). Other processes on the same file still wait in the busy handler."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return create_async_engine(url, pool_pre_ping=True, pool_size=1, max_overflow=0)
    return create_async_engine(url, pool_pre_ping=True)


def _migrate(connection: Connection, step: Callable[[Config, str], None], revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    step(config, revision)


@contextmanager
def _lock_file(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        yield fd
    finally:
        os.close(fd)  # closing the file releases the lock


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL with NORMAL: a commit survives the process being killed (not a power cut) and no
    # longer waits for fsync, so writers of several processes hold the lock for microseconds.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
