"""The audit log: who asked for what and what happened. Append-only from the bot's side."""

from __future__ import annotations

from sqlmodel import col, select

from services.storage.db import Database
from services.storage.tables import AuditRow


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self, *, actor: str, action: str, target: str = "", outcome: str, detail: str = ""
    ) -> None:
        async with self._db.session() as session:
            session.add(
                AuditRow(actor=actor, action=action, target=target, outcome=outcome, detail=detail)
            )
            await session.commit()

    async def recent(self, *, limit: int = 50) -> list[AuditRow]:
        async with self._db.session() as session:
            rows = await session.exec(
                select(AuditRow).order_by(col(AuditRow.id).desc()).limit(limit)
            )
            return list(rows)
