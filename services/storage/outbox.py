"""The messages a resync job posts (``job_messages``): one row per (job, role), written before
the post (the intent) and given the message's ``ts`` after it.

After a crash a row without ``ts`` means the message may be in Slack already: the poster
looks for it (by its metadata) before posting it. A row with ``ts``: it is there, edit it.
The intent is written only while this worker holds the job's claim (fenced), so a replica
that lost the job starts no new message of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from services.models import utcnow
from services.storage.claims import ClaimLost, fenced
from services.storage.db import Database
from services.storage.tables import JobMessageRow, JobRow

TABLE = JobMessageRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class JobMessage:
    job_id: str
    role: str
    ts: str | None


class JobMessages:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, *, job_id: str, role: str) -> JobMessage | None:
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(TABLE.c.ts).where(TABLE.c.job_id == job_id, TABLE.c.role == role)
                )
            ).first()
        return JobMessage(job_id, role, row.ts) if row is not None else None

    async def intend(self, *, job_id: str, role: str, worker: str) -> JobMessage:
        """Record that this job is about to post its ``role`` message; the existing row if a
        predecessor recorded it already. ClaimLost if ``worker`` does not hold the job."""
        claimed = select(col(JobRow.id)).where(col(JobRow.id) == job_id, fenced(worker))
        async with self._db.engine.begin() as conn:
            if (await conn.execute(claimed)).first() is None:
                raise ClaimLost(job_id)
            insert = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
            await conn.execute(
                insert(TABLE)
                .values(job_id=job_id, role=role, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=[TABLE.c.job_id, TABLE.c.role])
            )
        existing = await self.get(job_id=job_id, role=role)
        assert existing is not None
        return existing

    async def record(self, *, job_id: str, role: str, ts: str) -> None:
        statement = (
            update(TABLE).where(TABLE.c.job_id == job_id, TABLE.c.role == role).values(ts=ts)
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(statement)

    async def of_job(self, job_id: str) -> list[JobMessage]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(
                select(TABLE.c.role, TABLE.c.ts).where(TABLE.c.job_id == job_id)
            )
            return [JobMessage(job_id, row.role, row.ts) for row in rows]
