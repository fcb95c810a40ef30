"""Fix proposals as stored: a state machine with once-only moves.

proposed -> approved -> writing -> written -> done; proposed -> rejected | expired;
approved | writing -> refused | failed. Every move is a conditional update from the states
it may start from: of two clicks, two replicas or a redelivery, one moves and the others
learn what happened instead.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from services.fixes.prepare import Fix
from services.models import Frozen, UtcDateTime, WriteResult


class ProposalState(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    WRITING = "writing"
    """The write to QuickBooks was started with the proposal's requestid."""
    WRITTEN = "written"
    DONE = "done"
    REJECTED = "rejected"
    REFUSED = "refused"
    EXPIRED = "expired"
    FAILED = "failed"

    @property
    def open(self) -> bool:
        return self in OPEN

    @property
    def running(self) -> bool:
        return self in RUNNING


OPEN = (
    ProposalState.PROPOSED,
    ProposalState.APPROVED,
    ProposalState.WRITING,
    ProposalState.WRITTEN,
)
RUNNING = (ProposalState.APPROVED, ProposalState.WRITING, ProposalState.WRITTEN)
"""Approved and not finished: a replica that holds no live claim on it may take it over."""


class Proposal(Frozen):
    id: str
    invoice: str
    fix: Fix
    state: ProposalState
    proposed_by: str
    decided_by: str | None = None
    channel: str
    thread_ts: str
    message_ts: str | None = None
    result: WriteResult | None = None
    detail: str | None = None
    created_at: UtcDateTime
    expires_at: UtcDateTime
    updated_at: UtcDateTime

    @property
    def request_id(self) -> str:
        """Intuit's ``requestid`` for the write: the same on every attempt, by any replica."""
        return f"fix-{self.id}"

    @property
    def dismiss_key(self) -> str:
        return f"fix-{self.id}-dismiss"


class AlreadyProposed(Exception):
    """The invoice has an open proposal already."""

    def __init__(self, existing: Proposal) -> None:
        super().__init__(existing.id)
        self.existing = existing


class FixRecords(Protocol):
    """Where proposals live (the ``fix_proposals`` table). Keyword-only methods."""

    async def create(
        self,
        *,
        fix: Fix,
        proposed_by: str,
        channel: str,
        thread_ts: str,
        expires_at: datetime,
    ) -> Proposal:
        """A new proposal, or AlreadyProposed with the open one for the same invoice."""
        ...

    async def get(self, *, proposal_id: str) -> Proposal | None: ...

    async def move(
        self,
        *,
        proposal_id: str,
        frm: tuple[ProposalState, ...],
        to: ProposalState,
        claim: bool = False,
        **fields: Any,
    ) -> Proposal | None:
        """Move it from one of ``frm`` to ``to`` (setting ``fields``), or None when it is
        in none of them. ``claim``: this worker takes it (a lease) in the same update."""
        ...

    async def expired(self, *, now: datetime, limit: int = 50) -> list[Proposal]:
        """Proposals still waiting for approval past their expiry."""
        ...

    async def claim_message(self, *, proposal_id: str) -> bool:
        """True for the one caller that posts the proposal's message (it has none yet)."""
        ...

    async def claim_due(self, *, limit: int = 10, own: bool = False) -> list[Proposal]:
        """Approved, unfinished proposals whose worker's lease ran out, claimed by this one
        (``own``: this worker's too, whatever their lease: at start)."""
        ...
