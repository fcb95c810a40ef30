"""Resync jobs in the database. Keyword-only functions; the unique ``active_key`` makes a
second unfinished job for the same target impossible, whatever the number of replicas."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from services.jobs import (
    AlreadyRunning,
    Job,
    JobKind,
    JobState,
    Outcome,
    active_key,
    check_transition,
)
from services.models import RecordType, utcnow
from services.storage.db import Database
from services.storage.tables import JobRow

UNFINISHED = (JobState.QUEUED.value, JobState.RUNNING.value, JobState.VERIFYING.value)


def to_job(row: JobRow) -> Job:
    return Job.model_validate(row.model_dump(exclude={"active_key", "claimed_by", "lease_until"}))


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        kind: JobKind,
        record_type: RecordType,
        target: str,
        requested_by: str,
        channel: str,
        thread_ts: str,
        root_ts: str | None = None,
        invoice: str | None = None,
        integration_id: str | None = None,
        sync_from: date | None = None,
    ) -> Job:
        """A new queued job, or AlreadyRunning with the unfinished one for the same target."""
        key = active_key(kind, record_type, target)
        now = utcnow()
        row = JobRow(
            id=str(uuid.uuid4()),
            kind=kind.value,
            record_type=record_type.value,
            target=target,
            invoice=invoice,
            integration_id=integration_id,
            sync_from=sync_from,
            requested_by=requested_by,
            channel=channel,
            thread_ts=thread_ts,
            root_ts=root_ts,
            state=JobState.QUEUED.value,
            active_key=key,
            created_at=now,
            updated_at=now,
        )
        async with self._db.session() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                existing = await self.find_active(key=key)
                if existing is None:  # finished in between: the caller may try again
                    raise
                raise AlreadyRunning(existing) from None
        return to_job(row)

    async def find_active(self, *, key: str) -> Job | None:
        async with self._db.session() as session:
            rows = await session.exec(select(JobRow).where(JobRow.active_key == key))
            row = rows.first()
            return to_job(row) if row else None

    async def get(self, *, job_id: str) -> Job | None:
        async with self._db.session() as session:
            row = await session.get(JobRow, job_id)
            return to_job(row) if row else None

    async def update(self, *, job_id: str, state: JobState | None = None, **fields: Any) -> Job:
        """Move a job on (explicit transitions only) and/or set its coordinates."""
        allowed = {"progress_ts", "portal_ref", "detail", "root_ts", "thread_ts"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        async with self._db.session() as session:
            row = await session.get(JobRow, job_id, with_for_update=True)
            if row is None:
                raise LookupError(job_id)
            if state is not None:
                check_transition(JobState(row.state), state)
                row.state = state.value
            for name, value in fields.items():
                setattr(row, name, value)
            row.updated_at = utcnow()
            session.add(row)
            await session.commit()
            return to_job(row)

    async def finish(self, *, job_id: str, outcome: Outcome, detail: str | None = None) -> Job:
        state = JobState.DONE if outcome in (Outcome.FIXED, Outcome.COMPLETED) else JobState.FAILED
        async with self._db.session() as session:
            row = await session.get(JobRow, job_id, with_for_update=True)
            if row is None:
                raise LookupError(job_id)
            check_transition(JobState(row.state), state)
            row.state = state.value
            row.outcome = outcome.value
            row.detail = detail
            row.active_key = None
            row.finished_at = row.updated_at = utcnow()
            session.add(row)
            await session.commit()
            return to_job(row)

    async def unfinished(self) -> list[Job]:
        async with self._db.session() as session:
            rows = await session.exec(
                select(JobRow)
                .where(col(JobRow.state).in_(UNFINISHED))
                .order_by(col(JobRow.created_at))
            )
            return [to_job(r) for r in rows]

    async def claim(self, *, job_id: str, worker: str, lease: timedelta) -> bool:
        """Take the job for ``worker`` unless another worker holds a live lease on it."""
        now = utcnow()
        async with self._db.session() as session:
            row = await session.get(JobRow, job_id, with_for_update=True)
            if row is None or row.state not in UNFINISHED:
                return False
            held = row.claimed_by not in (None, worker)
            if held and row.lease_until is not None and row.lease_until > now:
                return False
            row.claimed_by = worker
            row.lease_until = now + lease
            session.add(row)
            await session.commit()
            return True

    async def recent(self, *, since: datetime | None = None, limit: int = 20) -> list[Job]:
        async with self._db.session() as session:
            query = select(JobRow).order_by(col(JobRow.created_at).desc()).limit(limit)
            if since is not None:
                query = query.where(col(JobRow.created_at) >= since)
            return [to_job(r) for r in await session.exec(query)]
