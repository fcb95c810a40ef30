"""Digest runs in the database (the ``digest_runs`` table). Keyword-only methods.

A running digest is never started twice: ``start`` checks and inserts in one transaction
that holds the table's write lock (SQLite: its first statement writes; PostgreSQL: a
transaction-scoped advisory lock), so two callers, or two replicas, cannot both start one.
A run left ``running`` by a process that died is given up after ``stale_after``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlmodel import col, select, update

from services.digest import (
    DigestAlreadyDone,
    DigestAlreadyRunning,
    DigestResult,
    DigestRun,
    RunState,
    Trigger,
)
from services.models import utcnow
from services.ports import Listed
from services.storage.db import Database
from services.storage.tables import DigestRunRow

STALE_AFTER = timedelta(hours=1)
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"invoicebot:digest_runs").digest()[:8], "big") >> 1


def to_run(row: DigestRunRow) -> DigestRun:
    return DigestRun(
        id=row.id,
        trigger=Trigger(row.trigger),
        channel=row.channel,
        state=RunState(row.state),
        started_at=row.started_at,
        requested_by=row.requested_by,
        day=row.day,
        finished_at=row.finished_at,
        open_invoices=row.open_invoices,
        discrepancies=row.discrepancies,
        skipped_recent=row.skipped_recent,
        amount_at_stake=Decimal(row.amount_at_stake) if row.amount_at_stake else None,
        duration_seconds=row.duration_seconds,
        message_ts=row.message_ts,
        detail=row.detail,
        rechecks_failed=row.rechecks_failed,
    )


@dataclass(frozen=True)
class Chain:
    """Where the next incremental digest starts: the last complete digest, the numbers it
    carries, QuickBooks' side of them as it read it, and when the last full scan began."""

    last: DigestRun
    carried: list[str]
    known: dict[str, Listed | None]
    last_full_at: datetime | None


def carried_text(result: DigestResult) -> str:
    """What a digest leaves for the next one, as JSON."""
    kept = {
        number: None if e is None else [str(e[0]), e[1] and e[1].isoformat(), e[2], e[3]]
        for number, e in result.accounting_kept.items()
    }
    return json.dumps({"numbers": result.carried, "accounting": kept})


def read_carried(text: str) -> tuple[list[str], dict[str, Listed | None]]:
    data = json.loads(text)
    known: dict[str, Listed | None] = {}
    for number, e in (data.get("accounting") or {}).items():
        changed = datetime.fromisoformat(e[1]) if e and e[1] else None
        known[number] = None if e is None else (Decimal(e[0]), changed, e[2], e[3])
    return list(data.get("numbers") or []), known


class DigestRuns:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._starting = asyncio.Lock()

    async def start(
        self,
        *,
        trigger: Trigger,
        channel: str,
        requested_by: str | None = None,
        day: date | None = None,
        stale_after: timedelta = STALE_AFTER,
        now: datetime | None = None,
    ) -> DigestRun:
        """A new running digest; DigestAlreadyRunning while another one runs, and for a
        scheduled one, DigestAlreadyDone when the run of that ``day`` exists (not failed)."""
        now = now or utcnow()
        async with self._starting, self._db.session() as session:
            if self._db.dialect == "postgresql":
                await session.exec(  # type: ignore[call-overload]
                    text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_LOCK_KEY)
                )
            # Written first: on SQLite the transaction now holds the write lock.
            await session.exec(
                update(DigestRunRow)
                .where(col(DigestRunRow.state) == RunState.RUNNING.value)
                .where(col(DigestRunRow.started_at) < now - stale_after)
                .values(state=RunState.FAILED.value, finished_at=now, detail="abandoned")
            )
            running = await session.exec(
                select(DigestRunRow).where(col(DigestRunRow.state) == RunState.RUNNING.value)
            )
            busy = running.first()
            if busy is not None:
                refused = to_run(busy)
                await session.rollback()
                raise DigestAlreadyRunning(refused)
            if day is not None:
                same_day = await session.exec(
                    select(DigestRunRow)
                    .where(col(DigestRunRow.trigger) == Trigger.SCHEDULE.value)
                    .where(col(DigestRunRow.day) == day)
                    .where(col(DigestRunRow.state) != RunState.FAILED.value)
                )
                done = same_day.first()
                if done is not None:
                    refused = to_run(done)
                    await session.rollback()
                    raise DigestAlreadyDone(refused)
            row = DigestRunRow(
                id=str(uuid.uuid4()),
                trigger=trigger.value,
                requested_by=requested_by,
                channel=channel,
                day=day,
                state=RunState.RUNNING.value,
                started_at=now,
            )
            session.add(row)
            await session.commit()
            return to_run(row)

    async def finish(
        self,
        *,
        run_id: str,
        result: DigestResult | None = None,
        message_ts: str | None = None,
        error: str | None = None,
        now: datetime | None = None,
        rechecks_failed: int | None = None,
    ) -> DigestRun:
        """Done with ``result``; failed when ``error`` is given (or there is no result).
        ``rechecks_failed``: discrepancies whose cause could not be re-checked."""
        async with self._db.session() as session:
            row = await session.get(DigestRunRow, run_id, with_for_update=True)
            if row is None:
                raise LookupError(run_id)
            failed = error is not None or result is None
            row.state = (RunState.FAILED if failed else RunState.DONE).value
            row.finished_at = now or utcnow()
            row.message_ts = message_ts or row.message_ts
            row.detail = error[:2000] if error else None
            if result is not None:
                row.open_invoices = result.open_invoices
                row.discrepancies = len(result.discrepancies)
                row.skipped_recent = result.skipped_recent
                row.amount_at_stake = str(result.amount_at_stake)
                row.duration_seconds = result.duration.total_seconds()
                row.rechecks_failed = rechecks_failed
                row.carried = carried_text(result)
                row.full_scan = not result.incremental
            else:
                row.duration_seconds = (row.finished_at - row.started_at).total_seconds()
            session.add(row)
            await session.commit()
            return to_run(row)

    async def chain(self) -> Chain | None:
        """The last complete digest, what it carries, and when the last full scan started
        (None: none since migration 0008); None when no complete digest exists."""
        async with self._db.session() as session:
            done = (
                select(DigestRunRow)
                .where(col(DigestRunRow.state) == RunState.DONE.value)
                .where(col(DigestRunRow.carried).is_not(None))
                .order_by(col(DigestRunRow.started_at).desc())
            )
            last = (await session.exec(done.limit(1))).first()
            if last is None:
                return None
            full_scans = done.where(col(DigestRunRow.full_scan).is_(True))
            full = (await session.exec(full_scans.limit(1))).first()
            numbers, known = read_carried(last.carried or "{}")
            return Chain(to_run(last), numbers, known, full.started_at if full else None)

    async def get(self, *, run_id: str) -> DigestRun | None:
        async with self._db.session() as session:
            row = await session.get(DigestRunRow, run_id)
            return to_run(row) if row else None

    async def recent(self, *, limit: int = 10) -> list[DigestRun]:
        """Newest first."""
        async with self._db.session() as session:
            rows = await session.exec(
                select(DigestRunRow).order_by(col(DigestRunRow.started_at).desc()).limit(limit)
            )
            return [to_run(r) for r in rows]
