"""Job claims: which worker (replica) runs an unfinished job, until when.

A claim is a row-level lease on ``resync_jobs`` (``claimed_by``, ``lease_until``). Taking
one is a single conditional UPDATE (and, on PostgreSQL, the sweep selects its candidates
``FOR UPDATE SKIP LOCKED`` so that sweeping replicas never wait on each other's rows)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlmodel import col

from services.jobs import Job
from services.models import utcnow
from services.storage.db import Database
from services.storage.tables import JobRow

OPEN_STATES = ("queued", "running", "verifying")
STORAGE_ONLY = {"active_key", "claimed_by", "lease_until", "attempts"}


def to_job(row: JobRow) -> Job:
    return Job.model_validate(row.model_dump(exclude=STORAGE_ONLY))


class ClaimLost(Exception):
    """Another worker holds the job now: this one must stop working on it."""


@dataclass(frozen=True)
class Claim:
    job: Job
    attempts: int
    """How many times the job was claimed, this claim included."""


def fenced(worker: str) -> ColumnElement[bool]:
    """Rows this worker may write: its own, or nobody's."""
    return or_(col(JobRow.claimed_by).is_(None), col(JobRow.claimed_by) == worker)


def claimable(worker: str, *, now: datetime) -> ColumnElement[bool]:
    """Unfinished, and not held by a live claim of another worker."""
    lease = col(JobRow.lease_until)
    return and_(
        col(JobRow.state).in_(OPEN_STATES),
        or_(col(JobRow.claimed_by) == worker, lease.is_(None), lease <= now),
    )


class JobClaims:
    def __init__(
        self,
        db: Database,
        *,
        worker: str,
        lease: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self.worker = worker
        self.lease = lease
        self.clock = clock

    async def claim(self, *, job_id: str) -> Claim | None:
        """Take the job unless another worker's lease on it is still running."""
        now = self.clock()
        statement = (
            update(JobRow)
            .where(col(JobRow.id) == job_id, claimable(self.worker, now=now))
            .values(
                claimed_by=self.worker,
                lease_until=now + self.lease,
                attempts=col(JobRow.attempts) + 1,
            )
            .returning(col(JobRow.attempts))
        )
        async with self._db.engine.begin() as conn:
            attempts = (await conn.execute(statement)).scalar_one_or_none()
        if attempts is None:
            return None
        job = await self._job(job_id)
        return Claim(job, attempts) if job is not None else None

    async def claim_due(
        self, *, limit: int = 20, skip: Collection[str] = (), own: bool = False
    ) -> list[Claim]:
        """Claim unfinished jobs nobody holds a live lease on (their worker finished badly,
        crashed or shut down), oldest first. ``own``: this worker's jobs too, whatever their
        lease (a replica with a stable name, starting again); ``skip``: jobs it runs now."""
        now = self.clock()
        free = [col(JobRow.lease_until).is_(None), col(JobRow.lease_until) <= now]
        if own:
            free.append(col(JobRow.claimed_by) == self.worker)
        due = and_(col(JobRow.state).in_(OPEN_STATES), or_(*free))
        if skip:
            due = and_(due, col(JobRow.id).not_in(list(skip)))
        query = select(col(JobRow.id)).where(due).order_by(col(JobRow.created_at)).limit(limit)
        if self._db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed: list[tuple[str, int]] = []
        async with self._db.engine.begin() as conn:
            for job_id in (await conn.execute(query)).scalars().all():
                statement = (
                    update(JobRow)
                    .where(col(JobRow.id) == job_id, due)
                    .values(
                        claimed_by=self.worker,
                        lease_until=now + self.lease,
                        attempts=col(JobRow.attempts) + 1,
                    )
                    .returning(col(JobRow.attempts))
                )
                attempts = (await conn.execute(statement)).scalar_one_or_none()
                if attempts is not None:
                    claimed.append((job_id, attempts))
        out = []
        for job_id, attempts in claimed:
            job = await self._job(job_id)
            if job is not None:
                out.append(Claim(job, attempts))
        return out

    async def renew(self, *, job_id: str) -> bool:
        """The heartbeat: extend this worker's lease; False if it holds the job no more."""
        statement = (
            update(JobRow)
            .where(
                col(JobRow.id) == job_id,
                col(JobRow.claimed_by) == self.worker,
                col(JobRow.state).in_(OPEN_STATES),
            )
            .values(lease_until=self.clock() + self.lease)
        )
        async with self._db.engine.begin() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def release(self, *, job_id: str) -> bool:
        """Let another worker take the job at once (this one is shutting down)."""
        statement = (
            update(JobRow)
            .where(col(JobRow.id) == job_id, col(JobRow.claimed_by) == self.worker)
            .values(claimed_by=None, lease_until=None)
        )
        async with self._db.engine.begin() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def _job(self, job_id: str) -> Job | None:
        async with self._db.session() as session:
            row = await session.get(JobRow, job_id)
            return to_job(row) if row is not None else None
