"""Follow-ups in the database (the ``follow_ups`` table). Keyword-only methods."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from services.causes import AtRisk, RiskKind
from services.followups import FollowUp
from services.models import utcnow
from services.storage.db import Database
from services.storage.tables import FollowUpRow

TABLE = FollowUpRow.__table__  # type: ignore[attr-defined]


def _domain(row: FollowUpRow) -> FollowUp:
    assert row.id is not None
    return FollowUp(
        id=row.id,
        invoice=row.invoice,
        kind=RiskKind(row.kind),
        reference=row.reference,
        amount=Decimal(row.amount),
        what=row.what,
        acknowledged_by=row.acknowledged_by,
        job_id=row.job_id,
        opened_at=row.opened_at,
        closed_at=row.closed_at,
        closed_because=row.closed_because,
        closed_by=row.closed_by,
    )


class SqlFollowUps:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open(
        self, *, invoice: str, risk: AtRisk, acknowledged_by: str, job_id: str | None
    ) -> FollowUp:
        key = f"{invoice}|{risk.kind.value}|{risk.reference}"[:200]
        row = FollowUpRow(
            invoice=invoice[:64],
            kind=risk.kind.value,
            reference=risk.reference[:64],
            amount=str(risk.amount),
            what=risk.what,
            acknowledged_by=acknowledged_by[:64],
            job_id=job_id,
            open_key=key,
            opened_at=utcnow(),
        )
        try:
            async with self._db.session() as session:
                session.add(row)
                await session.commit()
                await session.refresh(row)
                return _domain(row)
        except IntegrityError:  # already open: the same money, acknowledged before
            async with self._db.session() as session:
                query = select(FollowUpRow).where(col(FollowUpRow.open_key) == key)
                found = (await session.exec(query)).one()
                return _domain(found)

    async def open_for(self, *, invoice: str) -> list[FollowUp]:
        statement = (
            select(FollowUpRow)
            .where(col(FollowUpRow.invoice) == invoice[:64], col(FollowUpRow.closed_at).is_(None))
            .order_by(col(FollowUpRow.id))
        )
        async with self._db.session() as session:
            return [_domain(row) for row in (await session.exec(statement)).all()]

    async def all_open(self, *, limit: int = 200) -> list[FollowUp]:
        statement = select(FollowUpRow).where(col(FollowUpRow.closed_at).is_(None))
        async with self._db.session() as session:
            rows = [_domain(row) for row in (await session.exec(statement)).all()]
        rows.sort(key=lambda f: (-f.amount, f.opened_at, f.id))
        return rows[:limit]

    async def close(
        self, *, followup_id: int, because: str, at: datetime, by: str | None = None
    ) -> bool:
        statement = (
            update(TABLE)
            .where(TABLE.c.id == followup_id, TABLE.c.closed_at.is_(None))
            .values(
                closed_at=at,
                closed_because=because[:500],
                closed_by=by[:64] if by else None,
                open_key=None,
            )
        )
        async with self._db.engine.begin() as conn:
            result = await conn.execute(statement)
        return bool(result.rowcount)

    async def get(self, *, followup_id: int) -> FollowUp | None:
        async with self._db.session() as session:
            row = await session.get(FollowUpRow, followup_id)
            return _domain(row) if row is not None else None

    async def closed_by_hand(self, *, limit: int = 10) -> list[FollowUp]:
        statement = (
            select(FollowUpRow)
            .where(col(FollowUpRow.closed_by).is_not(None))
            .order_by(col(FollowUpRow.closed_at).desc(), col(FollowUpRow.id).desc())
            .limit(limit)
        )
        async with self._db.session() as session:
            return [_domain(row) for row in (await session.exec(statement)).all()]
