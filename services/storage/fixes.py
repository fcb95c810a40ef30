"""Fix proposals in the database (services.fixes.records.FixRecords)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from services.fixes.prepare import Fix
from services.fixes.records import RUNNING, AlreadyProposed, Proposal, ProposalState
from services.models import WriteResult, utcnow
from services.storage.db import Database
from services.storage.tables import FixProposalRow

POSTING = "posting"
"""``message_ts`` while the proposal's message is being posted."""
UPDATABLE = {"decided_by", "message_ts", "result", "detail"}


def to_proposal(row: FixProposalRow) -> Proposal:
    return Proposal(
        id=row.id,
        invoice=row.invoice,
        fix=Fix.model_validate_json(row.fix),
        state=ProposalState(row.state),
        proposed_by=row.proposed_by,
        decided_by=row.decided_by,
        channel=row.channel,
        thread_ts=row.thread_ts,
        message_ts=row.message_ts,
        result=WriteResult.model_validate_json(row.result) if row.result else None,
        detail=row.detail,
        created_at=row.created_at,
        expires_at=row.expires_at,
        updated_at=row.updated_at,
    )


class FixProposalStore:
    def __init__(
        self, db: Database, *, worker: str = "local", lease: timedelta = timedelta(seconds=60)
    ) -> None:
        self._db = db
        self.worker = worker
        self.lease = lease

    async def create(
        self, *, fix: Fix, proposed_by: str, channel: str, thread_ts: str, expires_at: datetime
    ) -> Proposal:
        now = utcnow()
        row = FixProposalRow(
            id=uuid.uuid4().hex[:12],
            invoice=fix.invoice,
            kind=fix.kind.value,
            state=ProposalState.PROPOSED.value,
            fix=fix.model_dump_json(),
            proposed_by=proposed_by,
            channel=channel,
            thread_ts=thread_ts,
            open_key=fix.invoice,
            created_at=now,
            expires_at=expires_at,
            updated_at=now,
        )
        async with self._db.session() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                existing = await self.open_for(invoice=fix.invoice)
                if existing is None:
                    raise
                raise AlreadyProposed(existing) from None
            return to_proposal(row)

    async def open_for(self, *, invoice: str) -> Proposal | None:
        async with self._db.session() as session:
            rows = await session.exec(
                select(FixProposalRow).where(FixProposalRow.open_key == invoice)
            )
            row = rows.first()
            return to_proposal(row) if row else None

    async def get(self, *, proposal_id: str) -> Proposal | None:
        async with self._db.session() as session:
            row = await session.get(FixProposalRow, proposal_id)
            return to_proposal(row) if row else None

    async def move(
        self,
        *,
        proposal_id: str,
        frm: tuple[ProposalState, ...],
        to: ProposalState,
        claim: bool = False,
        **fields: Any,
    ) -> Proposal | None:
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        values: dict[str, Any] = {"state": to.value, "updated_at": utcnow()}
        for name, value in fields.items():
            values[name] = value.model_dump_json() if isinstance(value, WriteResult) else value
        if not to.open:
            values.update(open_key=None, claimed_by=None, lease_until=None)
        elif claim:
            values.update(claimed_by=self.worker, lease_until=utcnow() + self.lease)
        where = and_(
            col(FixProposalRow.id) == proposal_id,
            col(FixProposalRow.state).in_([s.value for s in frm]),
            or_(  # fenced: another worker's live claim wins
                col(FixProposalRow.claimed_by).is_(None),
                col(FixProposalRow.claimed_by) == self.worker,
                col(FixProposalRow.lease_until) <= utcnow(),
            ),
        )
        async with self._db.engine.begin() as conn:
            moved = await conn.execute(update(FixProposalRow).where(where).values(values))
            if moved.rowcount != 1:
                return None
        return await self.get(proposal_id=proposal_id)

    async def expired(self, *, now: datetime, limit: int = 50) -> list[Proposal]:
        query = (
            select(FixProposalRow)
            .where(
                col(FixProposalRow.state) == ProposalState.PROPOSED.value,
                col(FixProposalRow.expires_at) <= now,
            )
            .limit(limit)
        )
        async with self._db.session() as session:
            return [to_proposal(row) for row in await session.exec(query)]

    async def claim_message(self, *, proposal_id: str) -> bool:
        statement = (
            update(FixProposalRow)
            .where(col(FixProposalRow.id) == proposal_id, col(FixProposalRow.message_ts).is_(None))
            .values(message_ts=POSTING)
        )
        async with self._db.engine.begin() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def claim_due(self, *, limit: int = 10, own: bool = False) -> list[Proposal]:
        now = utcnow()
        free = [col(FixProposalRow.lease_until).is_(None), col(FixProposalRow.lease_until) <= now]
        if own:
            free.append(col(FixProposalRow.claimed_by) == self.worker)
        due = and_(col(FixProposalRow.state).in_([s.value for s in RUNNING]), or_(*free))
        async with self._db.session() as session:
            ids = list(
                (await session.exec(select(FixProposalRow.id).where(due).limit(limit))).all()
            )
        claimed = []
        for proposal_id in ids:
            statement = (
                update(FixProposalRow)
                .where(col(FixProposalRow.id) == proposal_id, due)
                .values(claimed_by=self.worker, lease_until=now + self.lease)
            )
            async with self._db.engine.begin() as conn:
                won = (await conn.execute(statement)).rowcount == 1
            found = await self.get(proposal_id=proposal_id) if won else None
            if found is not None:
                claimed.append(found)
        return claimed


__all__ = ["FixProposalStore", "to_proposal"]
