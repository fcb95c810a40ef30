"""Alembic environment: the connection comes from ``Database.upgrade`` (or, for the
``alembic`` command line, from DATABASE_URL)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine, pool
from sqlmodel import SQLModel

from services.storage import tables  # noqa: F401  (registers the tables)
from services.storage.db import async_url

config = context.config
target_metadata = SQLModel.metadata


def sync_url(url: str) -> str:
    """The command line runs synchronously: aiosqlite becomes the plain sqlite driver."""
    return async_url(url).replace("sqlite+aiosqlite://", "sqlite://", 1)


def configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: copy-and-move instead
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        configure(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(
        "DATABASE_URL", "sqlite:///./invoicebot.db"
    )
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        configure(conn)
        conn.commit()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")
run()
