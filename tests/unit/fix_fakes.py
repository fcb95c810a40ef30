"""In-memory fix proposals and audit log, as the storage keeps them (once-only moves)."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from services.fixes import AlreadyProposed, Fix, Proposal, ProposalState
from services.fixes.records import RUNNING
from tests.diagnosis_support import NOW


class MemoryFixRecords:
    def __init__(self) -> None:
        self.rows: dict[str, Proposal] = {}
        self.ids = itertools.count(1)

    async def create(
        self, *, fix: Fix, proposed_by: str, channel: str, thread_ts: str, expires_at: datetime
    ) -> Proposal:
        for row in self.rows.values():
            if row.invoice == fix.invoice and row.state.open:
                raise AlreadyProposed(row)
        proposal = Proposal(
            id=f"p{next(self.ids)}",
            invoice=fix.invoice,
            fix=fix,
            state=ProposalState.PROPOSED,
            proposed_by=proposed_by,
            channel=channel,
            thread_ts=thread_ts,
            created_at=NOW,
            expires_at=expires_at,
            updated_at=NOW,
        )
        self.rows[proposal.id] = proposal
        return proposal

    async def get(self, *, proposal_id: str) -> Proposal | None:
        return self.rows.get(proposal_id)

    async def move(
        self,
        *,
        proposal_id: str,
        frm: tuple[ProposalState, ...],
        to: ProposalState,
        claim: bool = False,
        **fields: Any,
    ) -> Proposal | None:
        row = self.rows.get(proposal_id)
        if row is None or row.state not in frm:
            return None
        self.rows[proposal_id] = row.model_copy(update={"state": to, **fields})
        return self.rows[proposal_id]

    async def expired(self, *, now: datetime, limit: int = 50) -> list[Proposal]:
        waiting = [p for p in self.rows.values() if p.state is ProposalState.PROPOSED]
        return [p for p in waiting if p.expires_at <= now][:limit]

    async def claim_message(self, *, proposal_id: str) -> bool:
        row = self.rows[proposal_id]
        if row.message_ts is not None:
            return False
        self.rows[proposal_id] = row.model_copy(update={"message_ts": "posting"})
        return True

    async def claim_due(self, *, limit: int = 10, own: bool = False) -> list[Proposal]:
        return [p for p in self.rows.values() if p.state in RUNNING][:limit]


class MemoryAudit:
    def __init__(self) -> None:
        self.entries: list[dict[str, str]] = []

    async def record(
        self, *, actor: str, action: str, target: str = "", outcome: str, detail: str = ""
    ) -> None:
        self.entries.append(
            {
                "actor": actor,
                "action": action,
                "target": target,
                "outcome": outcome,
                "detail": detail,
            }
        )

    def outcomes(self, action: str) -> list[str]:
        return [e["outcome"] for e in self.entries if e["action"] == action]
