"""The QuickBooks watch's tables: change events (deduplicated by id), invoices due for a
re-check, the alerts posted, and named marks (the last change seen, the last delivery).
Keyword-only methods; every insert that may race another replica is one statement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.storage.db import Database
from services.storage.tables import QboEventRow, WatchAlertRow, WatchMarkRow, WatchRecheckRow
from services.watch_events import ChangeEvent

EVENTS = QboEventRow.__table__  # type: ignore[attr-defined]
RECHECKS = WatchRecheckRow.__table__  # type: ignore[attr-defined]
ALERTS = WatchAlertRow.__table__  # type: ignore[attr-defined]
MARKS = WatchMarkRow.__table__  # type: ignore[attr-defined]
ALERT_LEASE = timedelta(minutes=5)
"""A claim to post an alert that has not been posted after this long is taken over."""


@dataclass(frozen=True)
class DueRecheck:
    """An invoice whose re-check is due, claimed by this caller until ``claimed_until``."""

    number: str
    reason: str
    changed_at: datetime
    """The last change that marked it."""
    claimed_until: datetime


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
                    .returning(EVENTS.c.event_id)
                )
                new += len((await conn.execute(statement)).all())
        return new

    async def claim_events(
        self, *, now: datetime, lease: timedelta, limit: int = 200
    ) -> list[ChangeEvent]:
        """The events not acted on yet that nobody holds, each claimed by this caller until
        ``now + lease`` (another replica skips them)."""
        free = or_(EVENTS.c.claimed_until.is_(None), EVENTS.c.claimed_until <= now)
        statement = (
            select(EVENTS)
            .where(EVENTS.c.processed_at.is_(None), free)
            .order_by(EVENTS.c.received_at, EVENTS.c.event_id)
            .limit(limit)
        )
        claimed = []
        async with self._db.engine.begin() as conn:
            for row in (await conn.execute(statement)).all():
                won = await conn.execute(
                    update(EVENTS)
                    .where(EVENTS.c.event_id == row.event_id, EVENTS.c.processed_at.is_(None), free)
                    .values(claimed_until=now + lease)
                )
                if won.rowcount:
                    claimed.append(
                        ChangeEvent(
                            id=row.event_id,
                            realm_id=row.realm_id,
                            entity=row.entity,
                            entity_id=row.entity_id,
                            operation=row.operation,
                            occurred_at=row.occurred_at,
                        )
                    )
        return claimed

    async def processed(self, *, event_ids: Sequence[str], now: datetime) -> None:
        await self._events(event_ids, processed_at=now, claimed_until=None)

    async def release_events(self, *, event_ids: Sequence[str]) -> None:
        """Give claimed events back (a system did not answer: the next round takes them)."""
        await self._events(event_ids, claimed_until=None)

    async def failed(
        self, *, event_id: str, now: datetime, retry_at: datetime, max_attempts: int
    ) -> bool:
        """Acting on one event failed: tried again from ``retry_at``, or set aside (marked
        processed) after ``max_attempts``; True when set aside."""
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(EVENTS)
                .where(EVENTS.c.event_id == event_id)
                .values(attempts=EVENTS.c.attempts + 1, claimed_until=retry_at)
            )
            gone = await conn.execute(
                update(EVENTS)
                .where(EVENTS.c.event_id == event_id, EVENTS.c.attempts >= max_attempts)
                .values(processed_at=now, claimed_until=None)
            )
        return bool(gone.rowcount)

    async def _events(self, event_ids: Sequence[str], **values: Any) -> None:
        if not event_ids:
            return
        statement = update(EVENTS).where(EVENTS.c.event_id.in_(list(event_ids))).values(**values)
        async with self._db.engine.begin() as conn:
            await conn.execute(statement)

    async def pending_events(self) -> int:
        """Events not acted on (nor set aside) yet."""
        statement = select(EVENTS.c.event_id).where(EVENTS.c.processed_at.is_(None))
        async with self._db.engine.connect() as conn:
            return len((await conn.execute(statement)).all())

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
        self,
        *,
        numbers: Sequence[str],
        due_at: datetime,
        now: datetime,
        reason: str,
        latest: timedelta | None = None,
    ) -> int:
        """Mark invoices for a re-check at ``due_at``. One already marked is re-checked at the
        later of the two times, but no later than ``latest`` after its first mark (changes
        that never stop still get a re-check); a claimed one is re-checked again. How many
        were newly marked."""
        new = 0
        async with self._db.engine.begin() as conn:
            for number in dict.fromkeys(numbers):
                key = number[:64]
                statement = (
                    self._insert(RECHECKS)
                    .values(
                        invoice_number=key,
                        due_at=due_at,
                        marked_at=now,
                        changed_at=now,
                        reason=reason[:200],
                    )
                    .on_conflict_do_nothing(index_elements=[RECHECKS.c.invoice_number])
                    .returning(RECHECKS.c.invoice_number)
                )
                if (await conn.execute(statement)).first() is not None:
                    new += 1
                    continue
                row = (
                    await conn.execute(
                        select(RECHECKS.c.marked_at).where(RECHECKS.c.invoice_number == key)
                    )
                ).first()
                if row is None:  # taken and done meanwhile: the next change marks it
                    continue
                due = due_at if latest is None else min(due_at, row.marked_at + latest)
                await conn.execute(
                    update(RECHECKS)
                    .where(RECHECKS.c.invoice_number == key, RECHECKS.c.due_at < due)
                    .values(due_at=due)
                )
                await conn.execute(
                    update(RECHECKS)
                    .where(RECHECKS.c.invoice_number == key)
                    .values(changed_at=now, claimed_until=None)
                )
        return new

    async def again(self, *, number: str, due_at: datetime, now: datetime) -> None:
        """The re-check could not be done: once more at ``due_at``."""
        statement = (
            update(RECHECKS)
            .where(RECHECKS.c.invoice_number == number[:64])
            .values(due_at=due_at, marked_at=now, claimed_until=None)
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(statement)

    async def marked(self) -> dict[str, datetime]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(select(RECHECKS.c.invoice_number, RECHECKS.c.due_at))
            return {row.invoice_number: row.due_at for row in rows}

    async def take_due(
        self, *, now: datetime, lease: timedelta, limit: int = 50
    ) -> list[DueRecheck]:
        """The invoices due for their re-check, each claimed by one caller until ``now +
        lease``; the row stays until ``done`` (a re-check lost in a crash comes round again
        when the lease ends)."""
        free = or_(RECHECKS.c.claimed_until.is_(None), RECHECKS.c.claimed_until <= now)
        statement = (
            select(RECHECKS)
            .where(RECHECKS.c.due_at <= now, free)
            .order_by(RECHECKS.c.due_at)
            .limit(limit)
        )
        until = now + lease
        taken: list[DueRecheck] = []
        async with self._db.engine.begin() as conn:
            for row in (await conn.execute(statement)).all():
                won = await conn.execute(
                    update(RECHECKS)
                    .where(RECHECKS.c.invoice_number == row.invoice_number, free)
                    .values(claimed_until=until)
                )
                if won.rowcount:
                    taken.append(
                        DueRecheck(
                            number=row.invoice_number,
                            reason=row.reason,
                            changed_at=row.changed_at or row.marked_at,
                            claimed_until=until,
                        )
                    )
        return taken

    async def done(self, *, due: DueRecheck) -> bool:
        """The re-check's alert has gone out: the row goes, unless a change marked it again
        meanwhile (then it stays, for the next re-check)."""
        statement = delete(RECHECKS).where(
            RECHECKS.c.invoice_number == due.number,
            RECHECKS.c.claimed_until == due.claimed_until,
        )
        async with self._db.engine.begin() as conn:
            return bool((await conn.execute(statement)).rowcount)

    # -- alerts -------------------------------------------------------------------------
    async def alert(self, *, key: str) -> tuple[str, str | None] | None:
        """(channel, message ts) of the alert under ``key``, or None."""
        statement = select(ALERTS.c.channel, ALERTS.c.message_ts).where(ALERTS.c.key == key)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else (row.channel, row.message_ts)

    async def claim_alert(
        self, *, key: str, channel: str, now: datetime, lease: timedelta = ALERT_LEASE
    ) -> bool:
        """True when nobody posted an alert under ``key`` yet, nor is posting one: a claim
        never finished (its poster died) is taken over once ``lease`` has passed."""
        key = key[:200]
        statement = (
            self._insert(ALERTS)
            .values(key=key, channel=channel, alerted_at=now)
            .on_conflict_do_nothing(index_elements=[ALERTS.c.key])
            .returning(ALERTS.c.key)
        )
        stale = (
            update(ALERTS)
            .where(
                ALERTS.c.key == key,
                ALERTS.c.message_ts.is_(None),
                ALERTS.c.alerted_at <= now - lease,
            )
            .values(channel=channel, alerted_at=now)
        )
        async with self._db.engine.begin() as conn:
            if (await conn.execute(statement)).first() is not None:
                return True
            return bool((await conn.execute(stale)).rowcount)

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
