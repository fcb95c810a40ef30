"""Read-only questions the health and metrics endpoints ask the database."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlmodel import col

from services.jobs import JobState
from services.storage.db import Database
from services.storage.tables import JobRow


async def ping(db: Database) -> None:
    """Raises when the database cannot be reached."""
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def job_counts(db: Database) -> dict[JobState, int]:
    """How many resync jobs are in each state (every state listed, zero included)."""
    counts = dict.fromkeys(JobState, 0)
    query = select(col(JobRow.state), func.count()).group_by(col(JobRow.state))
    async with db.engine.connect() as conn:
        for state, count in await conn.execute(query):
            if state in counts:
                counts[JobState(state)] = int(count)
    return counts
