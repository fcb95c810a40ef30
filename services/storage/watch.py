"""The QuickBooks watch's tables: change events (deduplicated by id), invoices due for a
re-check, the alerts posted, and named marks (the last change seen, the last delivery).
Keyword-only methods; every insert that may race another replica is one statement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.storage.db import Database
from services.storage.tables import QboEventRow, WatchAlertRow, WatchMarkRow, WatchRecheckRow
from services.watch_events import ChangeEvent

EVENTS = QboEventRow.__table__  # type: ignore[attr-defined]
RECHECKS = WatchRecheckRow.__table__  # type: ignore[attr-defined]
ALERTS = WatchAlertRow.__table__  # type: ignore[attr-defined]
MARKS = WatchMarkRow.__table__  # type: ignore[attr-defined]


class WatchStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self._db.dialect == "postgresql" else sqlite_insert)(table)

    # -- events -------------------------------------------------------------------------
    async def store_events(self, *, events: Sequence[ChangeEvent], now: datetime) -> int:
        """Store the events not stored before (by id), in one transaction; how many were
        new. Done before the webhook is answered: an answered event is never lost."""
        new = 0
        async with self._db.engine.begin() as conn:
            for event in events:
                statement = (
                    self._insert(EVENTS)
                    .values(
                        event_id=event.id[:200],
                        realm_id=event.realm_id[:64],
                        entity=event.entity[:32],
                        entity_id=event.entity_id[:64],
                        operation=event.operation[:32],
                        occurred_at=event.occurred_at,
                        received_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=[EVENTS.c.event_id])
                )
                new += (await conn.execute(statement)).rowcount or 0
        return new

    async def unprocessed(self, *, limit: int = 500) -> list[ChangeEvent]:
        statement = (
            select(EVENTS)
            .where(EVENTS.c.processed_at.is_(None))
            .order_by(EVENTS.c.received_at, EVENTS.c.event_id)
            .limit(limit)
        )
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            ChangeEvent(
                id=row.event_id,
                realm_id=row.realm_id,
                entity=row.entity,
                entity_id=row.entity_id,
                operation=row.operation,
                occurred_at=row.occurred_at,
            )
            for row in rows
        ]

    async def processed(self, *, event_ids: Sequence[str], now: datetime) -> None:
        if not event_ids:
            return
        statement = (
            update(EVENTS).where(EVENTS.c.event_id.in_(list(event_ids))).values(processed_at=now)
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(statement)

    async def deleted_since(self, *, entity: str, since: datetime) -> int:
        """How many deletions of ``entity`` were received at or after ``since``."""
        query = (
            select(EVENTS.c.event_id)
            .where(EVENTS.c.entity == entity)
            .where(EVENTS.c.operation == "delete")
            .where(EVENTS.c.received_at >= since)
        )
        async with self._db.engine.connect() as conn:
            return len((await conn.execute(query)).all())

    async def event_count(self) -> int:
        async with self._db.engine.connect() as conn:
            return len((await conn.execute(select(EVENTS.c.event_id))).all())

    # -- re-checks ----------------------------------------------------------------------
    async def mark(
        self, *, numbers: Sequence[str], due_at: datetime, now: datetime, reason: str
    ) -> int:
        """Mark invoices for a re-check at ``due_at``; one already marked keeps its time (many
        events on one invoice: one re-check). How many were newly marked."""
        new = 0
        async with self._db.engine.begin() as conn:
            for number in dict.fromkeys(numbers):
                statement = (
                    self._insert(RECHECKS)
                    .values(
                        invoice_number=number[:64],
                        due_at=due_at,
                        marked_at=now,
                        reason=reason[:200],
                    )
                    .on_conflict_do_nothing(index_elements=[RECHECKS.c.invoice_number])
                )
                new += (await conn.execute(statement)).rowcount or 0
        return new

    async def marked(self) -> dict[str, datetime]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(select(RECHECKS.c.invoice_number, RECHECKS.c.due_at))
            return {row.invoice_number: row.due_at for row in rows}

    async def take_due(self, *, now: datetime, limit: int = 50) -> dict[str, str]:
        """The invoices due for their re-check (number -> why), each taken by one caller."""
        statement = (
            select(RECHECKS.c.invoice_number, RECHECKS.c.due_at, RECHECKS.c.reason)
            .where(RECHECKS.c.due_at <= now)
            .order_by(RECHECKS.c.due_at)
            .limit(limit)
        )
        taken: dict[str, str] = {}
        async with self._db.engine.begin() as conn:
            for row in (await conn.execute(statement)).all():
                gone = await conn.execute(
                    delete(RECHECKS).where(
                        RECHECKS.c.invoice_number == row.invoice_number,
                        RECHECKS.c.due_at == row.due_at,
                    )
                )
                if gone.rowcount:
                    taken[row.invoice_number] = row.reason
        return taken

    # -- alerts -------------------------------------------------------------------------
    async def alert(self, *, key: str) -> tuple[str, str | None] | None:
        """(channel, message ts) of the alert under ``key``, or None."""
        statement = select(ALERTS.c.channel, ALERTS.c.message_ts).where(ALERTS.c.key == key)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else (row.channel, row.message_ts)

    async def claim_alert(self, *, key: str, channel: str, now: datetime) -> bool:
        """True when nobody posted (or is posting) an alert under ``key`` yet."""
        statement = (
            self._insert(ALERTS)
            .values(key=key[:200], channel=channel, alerted_at=now)
            .on_conflict_do_nothing(index_elements=[ALERTS.c.key])
        )
        async with self._db.engine.begin() as conn:
            return bool((await conn.execute(statement)).rowcount)

    async def alert_posted(self, *, key: str, message_ts: str, now: datetime) -> None:
        statement = (
            update(ALERTS)
            .where(ALERTS.c.key == key[:200])
            .values(message_ts=message_ts, alerted_at=now)
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(statement)

    async def release_alert(self, *, key: str) -> None:
        statement = delete(ALERTS).where(ALERTS.c.key == key[:200], ALERTS.c.message_ts.is_(None))
        async with self._db.engine.begin() as conn:
            await conn.execute(statement)

    # -- marks --------------------------------------------------------------------------
    async def get_mark(self, *, name: str) -> datetime | None:
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(select(MARKS.c.at).where(MARKS.c.name == name))).first()
        return None if row is None else row.at

    async def set_mark(self, *, name: str, at: datetime) -> None:
        statement = (
            self._insert(MARKS)
            .values(name=name, at=at)
            .on_conflict_do_update(index_elements=[MARKS.c.name], set_={"at": at})
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(statement)
