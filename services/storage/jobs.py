"""Resync jobs in the database. Keyword-only functions; the unique ``active_key`` makes a
second unfinished job for the same target impossible, whatever the number of replicas.

Each store belongs to one worker (a replica). A job is run by the worker that claims it
(``claim``, ``claim_due``): the claim is a lease the runner renews (``renew``) while it
works; a crashed worker's lease runs out and another worker's sweep takes the job. Every
write is fenced: a worker that lost its claim cannot move the job any more (ClaimLost).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from services.jobs import (
    ALLOWED,
    AlreadyRunning,
    Job,
    JobKind,
    JobState,
    Outcome,
    active_key,
    check_transition,
)
from services.models import RecordType, utcnow
from services.storage.claims import Claim, ClaimLost, JobClaims, fenced, to_job
from services.storage.db import Database
from services.storage.tables import JobRow

UNFINISHED = (JobState.QUEUED.value, JobState.RUNNING.value, JobState.VERIFYING.value)
UPDATABLE = {"progress_ts", "portal_ref", "portal_requested_at", "detail", "root_ts", "thread_ts"}

__all__ = ["UNFINISHED", "Claim", "ClaimLost", "SqlJobStore", "to_job"]


class SqlJobStore(JobClaims):
    def __init__(
        self,
        db: Database,
        *,
        worker: str = "local",
        lease: timedelta = timedelta(seconds=30),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(db, worker=worker, lease=lease, clock=clock)

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
        acknowledged: str | None = None,
    ) -> Job:
        """A new queued job claimed by this worker, or AlreadyRunning with the unfinished
        one for the same target. ``acknowledged``: the fingerprint of the amounts the
        requester agreed the write may take out of view (services.guard)."""
        key = active_key(kind, record_type, target)
        now = self.clock()
        row = JobRow(
            id=str(uuid.uuid4()),
            kind=kind.value,
            record_type=record_type.value,
            target=target,
            invoice=invoice,
            integration_id=integration_id,
            sync_from=sync_from,
            acknowledged=acknowledged,
            requested_by=requested_by,
            channel=channel,
            thread_ts=thread_ts,
            root_ts=root_ts,
            state=JobState.QUEUED.value,
            active_key=key,
            claimed_by=self.worker,
            lease_until=now + self.lease,
            attempts=1,
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
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        values = dict(fields) | ({"state": state.value} if state is not None else {})
        return await self._write(job_id, values, to=state)

    async def finish(self, *, job_id: str, outcome: Outcome, detail: str | None = None) -> Job:
        state = JobState.DONE if outcome in (Outcome.FIXED, Outcome.COMPLETED) else JobState.FAILED
        values = {
            "state": state.value,
            "outcome": outcome.value,
            "detail": detail,
            "active_key": None,
            "lease_until": None,
            "finished_at": self.clock(),
        }
        return await self._write(job_id, values, to=state)

    async def _write(self, job_id: str, values: dict[str, Any], *, to: JobState | None) -> Job:
        """One guarded UPDATE ... RETURNING (one round trip: a replica killed right after a
        Slack post has the least time to lose the post's record). Written only if this
        worker may write the job (the fence) and its current state allows the move."""
        guard = [col(JobRow.id) == job_id, fenced(self.worker)]
        if to is not None:
            sources = [s.value for s, targets in ALLOWED.items() if to in targets]
            guard.append(col(JobRow.state).in_(sources))
        statement = (
            update(JobRow)
            .where(*guard)
            .values(**values, updated_at=self.clock())
            .returning(*JobRow.__table__.columns)  # type: ignore[attr-defined]
        )
        async with self._db.engine.begin() as conn:
            written = (await conn.execute(statement)).first()
        if written is not None:
            return to_job(JobRow.model_validate(dict(written._mapping)))
        current = await self._row(job_id)  # LookupError when there is no such job
        if current.claimed_by not in (None, self.worker):
            raise ClaimLost(job_id)
        if to is not None:
            check_transition(JobState(current.state), to)  # InvalidTransition
        raise ClaimLost(job_id)  # moved by someone else meanwhile

    async def _row(self, job_id: str) -> JobRow:
        async with self._db.session() as session:
            row = await session.get(JobRow, job_id, populate_existing=True)
            if row is None:
                raise LookupError(job_id)
            return row

    async def unfinished(self) -> list[Job]:
        async with self._db.session() as session:
            rows = await session.exec(
                select(JobRow)
                .where(col(JobRow.state).in_(UNFINISHED))
                .order_by(col(JobRow.created_at))
            )
            return [to_job(r) for r in rows]

    async def recent(self, *, since: datetime | None = None, limit: int = 20) -> list[Job]:
        async with self._db.session() as session:
            query = select(JobRow).order_by(col(JobRow.created_at).desc()).limit(limit)
            if since is not None:
                query = query.where(col(JobRow.created_at) >= since)
            return [to_job(r) for r in await session.exec(query)]
