"""Propose, approve, reject and apply fixes in QuickBooks: the one guard on QuickBooks writes.

Applying re-reads everything (the SyncTokens, the balances, the evidence) and refuses, with
the reason, when anything changed since the proposal; then writes with the proposal's
``requestid`` (a retry, a second replica or a resumed application can never write twice),
dismisses the portal's failed transfer, re-reads, and closes the follow-ups the evidence
now settles. Whether the portal record still needs a resync is said in the result: that
write goes through the resync runner and its guard, never from here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from services.check import examine_invoice
from services.comparison import DEFAULT_MONEY_TOLERANCE, Comparison, Evidence
from services.errors import (
    NotAllowedError,
    NotFoundError,
    UpstreamError,
    UsageError,
    ValidationFault,
    in_words,
)
from services.fixes.owed import prepare_for
from services.fixes.prepare import Fix, NoFix, changed_since
from services.fixes.records import AlreadyProposed, FixRecords, Proposal, ProposalState
from services.followups import FollowUp, FollowUpStore, check_followed
from services.models import utcnow
from services.ports import AccountingSystem, AccountingWriter, BillingPortal

log = logging.getLogger(__name__)
S = ProposalState


class Audit(Protocol):
    async def record(
        self, *, actor: str, action: str, target: str = "", outcome: str, detail: str = ""
    ) -> None: ...


@dataclass(frozen=True)
class FixResult:
    proposal: Proposal
    comparison: Comparison | None = None
    followups: tuple[FollowUp, ...] = ()
    """The invoice's money still to account for, after the fix."""
    dismissed: bool = False
    needs_resync: bool = False
    """The balances still differ: the portal record wants a resync (through the runner)."""

    @property
    def refused(self) -> bool:
        return self.proposal.state in (S.REFUSED, S.FAILED)


class Decision(Exception):
    """A click that decides nothing (already decided, expired, not allowed): said privately."""

    def __init__(self, message: str, proposal: Proposal | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.proposal = proposal


@dataclass
class FixService:
    accounting: AccountingSystem
    writer: AccountingWriter
    portal: BillingPortal
    records: FixRecords
    followups: FollowUpStore
    audit: Audit
    proposal_hours: float = 24.0
    tolerance: Decimal = DEFAULT_MONEY_TOLERANCE
    clock: Callable[[], datetime] = utcnow

    # -- propose -------------------------------------------------------------------------
    async def propose(
        self, number: str, *, user: str, channel: str, thread_ts: str
    ) -> Proposal | NoFix:
        """The fix the evidence read now calls for, stored as a proposal (or the open one
        for the invoice, or why there is none)."""
        comparison, evidence = await self._read(number)
        fix = await self._prepare(comparison, evidence) if evidence else None
        if not isinstance(fix, Fix):
            reason = fix.reason if fix else f"Invoice {number} is in sync: nothing to fix."
            if comparison.verdict.value == "not_found":
                reason = f"Invoice {number} is in neither QuickBooks Online nor the portal."
            await self.audit.record(
                actor=user, action="fix.propose", target=number, outcome="no_fix", detail=reason
            )
            return NoFix(invoice=number, reason=reason)
        try:
            proposal = await self._create(fix, user=user, channel=channel, thread_ts=thread_ts)
        except AlreadyProposed as exc:
            existing = exc.existing
            if existing.state is not S.PROPOSED or self.clock() < existing.expires_at:
                return existing
            expired = await self.records.move(
                proposal_id=existing.id, frm=(S.PROPOSED,), to=S.EXPIRED
            )
            if expired is not None:
                await self._audit(expired, user, "fix.propose", "expired", "replaced")
            try:  # the expired one no longer holds the invoice
                proposal = await self._create(fix, user=user, channel=channel, thread_ts=thread_ts)
            except AlreadyProposed as again:
                return again.existing
        await self.audit.record(
            actor=user,
            action="fix.propose",
            target=number,
            outcome="proposed",
            detail=f"proposal {proposal.id}: {fix.headline}",
        )
        return proposal

    async def _create(self, fix: Fix, *, user: str, channel: str, thread_ts: str) -> Proposal:
        return await self.records.create(
            fix=fix,
            proposed_by=user,
            channel=channel,
            thread_ts=thread_ts,
            expires_at=self.clock() + timedelta(hours=self.proposal_hours),
        )

    # -- decide --------------------------------------------------------------------------
    async def approve(self, proposal_id: str, *, user: str, allowed: bool) -> Proposal:
        """``allowed``: the user is in FIX_APPROVERS (directly or by a user group). Returns
        the approved proposal, claimed by this worker; Decision when the click decides
        nothing."""
        proposal = await self._open(proposal_id, user=user, action="fix.approve")
        if user == proposal.proposed_by:
            await self._audit(proposal, user, "fix.approve", "refused", "own proposal")
            raise Decision(
                "You proposed this fix, so someone else must approve it (one person proposes, "
                "another approves).",
                proposal,
            )
        if not allowed:
            await self._audit(proposal, user, "fix.approve", "refused", "not in FIX_APPROVERS")
            raise NotAllowedError(
                "Only the people in FIX_APPROVERS can approve fixes in QuickBooks. Nothing was "
                "changed; ask one of them."
            )
        moved = await self.records.move(
            proposal_id=proposal.id, frm=(S.PROPOSED,), to=S.APPROVED, claim=True, decided_by=user
        )
        if moved is None:
            raise Decision(await self._already(proposal_id))
        await self._audit(moved, user, "fix.approve", "approved", "")
        return moved

    async def reject(self, proposal_id: str, *, user: str, allowed: bool) -> Proposal:
        """The proposer, or anyone who may approve, can reject."""
        proposal = await self._open(proposal_id, user=user, action="fix.reject")
        if user != proposal.proposed_by and not allowed:
            await self._audit(proposal, user, "fix.reject", "refused", "not in FIX_APPROVERS")
            raise NotAllowedError(
                "Only the proposer or the people in FIX_APPROVERS can reject this fix."
            )
        moved = await self.records.move(
            proposal_id=proposal.id, frm=(S.PROPOSED,), to=S.REJECTED, decided_by=user
        )
        if moved is None:
            raise Decision(await self._already(proposal_id))
        await self._audit(moved, user, "fix.reject", "rejected", "")
        return moved

    async def _open(self, proposal_id: str, *, user: str, action: str) -> Proposal:
        proposal = await self.records.get(proposal_id=proposal_id)
        if proposal is None:
            raise UsageError("I know of no such fix proposal.")
        if proposal.state is not S.PROPOSED:
            raise Decision(await self._already(proposal_id), proposal)
        if self.clock() >= proposal.expires_at:
            expired = await self.records.move(
                proposal_id=proposal.id, frm=(S.PROPOSED,), to=S.EXPIRED
            )
            if expired is not None:
                await self._audit(expired, user, action, "expired", "")
            raise Decision(
                f"This proposal expired at {proposal.expires_at:%Y-%m-%d %H:%M} UTC (proposals "
                "last FIX_PROPOSAL_HOURS). Nothing was changed; prepare a new one.",
                expired or proposal,
            )
        return proposal

    async def _already(self, proposal_id: str) -> str:
        proposal = await self.records.get(proposal_id=proposal_id)
        if proposal is None:
            return "I know of no such fix proposal."
        by = f" by <@{proposal.decided_by}>" if proposal.decided_by else ""
        words = {
            S.APPROVED: f"already approved{by} and being applied",
            S.WRITING: f"already approved{by} and being applied",
            S.WRITTEN: f"already approved{by} and being applied",
            S.DONE: f"already approved{by} and applied",
            S.REJECTED: f"rejected{by}",
            S.REFUSED: "refused when it was applied",
            S.EXPIRED: "expired",
            S.FAILED: "not applied (it failed)",
            S.PROPOSED: "still waiting for approval",
        }
        return f"This fix was {words[proposal.state]}: nothing more to do."

    # -- apply ---------------------------------------------------------------------------
    async def apply(self, proposal: Proposal) -> FixResult:
        """Take an approved proposal to its end, whatever step it was left at."""
        if proposal.state is S.APPROVED:
            proposal = await self._verify(proposal)
            if proposal.state is not S.WRITING:
                return FixResult(proposal)
        if proposal.state is S.WRITING:
            proposal = await self._write(proposal)
            if proposal.state is not S.WRITTEN:
                return FixResult(proposal)
        if proposal.state is S.WRITTEN:
            return await self._finish(proposal)
        return FixResult(proposal)

    async def expire_due(self) -> list[Proposal]:
        """Proposals past FIX_PROPOSAL_HOURS, expired now (each once, whoever sweeps)."""
        done = []
        for proposal in await self.records.expired(now=self.clock()):
            moved = await self.records.move(
                proposal_id=proposal.id, frm=(S.PROPOSED,), to=S.EXPIRED
            )
            if moved is not None:
                await self._audit(moved, "", "fix.expire", "expired", "")
                done.append(moved)
        return done

    async def resume_due(self, *, own: bool = False) -> list[FixResult]:
        """Approved proposals a stopped worker left unfinished (``own``: this worker's own,
        at start): finished here, once."""
        return [await self.apply(p) for p in await self.records.claim_due(own=own)]

    async def _verify(self, proposal: Proposal) -> Proposal:
        fix = proposal.fix
        try:
            comparison, evidence = await self._read(fix.invoice)
        except UpstreamError as exc:
            return await self._stop(
                proposal,
                S.FAILED,
                "I could not re-read the invoice, so nothing was written: " + in_words(exc),
            )
        reason: str | None
        if evidence is None:
            reason = f"invoice {fix.invoice} can no longer be found"
        else:
            reason = changed_since(fix, await self._prepare(comparison, evidence), evidence)
        if reason is not None:
            return await self._stop(
                proposal,
                S.REFUSED,
                f"Not applied: {reason} since the proposal. Nothing was written; check the "
                "invoice again.",
            )
        moved = await self.records.move(
            proposal_id=proposal.id, frm=(S.APPROVED,), to=S.WRITING, claim=True
        )
        return moved or proposal

    async def _write(self, proposal: Proposal) -> Proposal:
        fix = proposal.fix
        try:
            if fix.payment is not None:
                result = await self.writer.apply_payment(
                    fix.payment,
                    invoice_id=fix.invoice_id,
                    amount=fix.amount,
                    request_id=proposal.request_id,
                )
            else:
                assert fix.memo is not None
                result = await self.writer.apply_credit_memo(
                    fix.memo,
                    invoice_id=fix.invoice_id,
                    amount=fix.amount,
                    request_id=proposal.request_id,
                )
        except (ValidationFault, NotFoundError) as exc:
            log.warning("fix %s: QuickBooks refused the write: %s", proposal.id, exc)
            return await self._stop(
                proposal, S.REFUSED, "Not applied: " + in_words(exc), code=exc.code
            )
        except UpstreamError as exc:
            log.warning("fix %s: the write's outcome is unknown: %s", proposal.id, exc)
            return await self._stop(
                proposal,
                S.FAILED,
                f"{exc.system} did not answer, so I cannot tell whether the change was made; "
                "check the invoice to see. (A retry of this proposal could not write twice: "
                "it carries the same requestid.)",
                code=exc.code,
            )
        moved = await self.records.move(
            proposal_id=proposal.id, frm=(S.WRITING,), to=S.WRITTEN, claim=True, result=result
        )
        await self._audit(
            proposal,
            proposal.decided_by or "",
            "fix.write",
            "written",
            f"{result.txn_type} {result.txn_id} SyncToken {result.sync_token} "
            f"requestid {result.request_id} intuit_tid {result.intuit_tid or 'none'}",
        )
        return moved or proposal

    async def _finish(self, proposal: Proposal) -> FixResult:
        fix = proposal.fix
        dismissed, notes = False, []
        if fix.dismiss is not None:
            try:
                await self.portal.dismiss_payment(
                    fix.dismiss.id, idempotency_key=proposal.dismiss_key
                )
                dismissed = True
            except NotFoundError:
                dismissed = True  # dismissed already (by this fix before a restart, or a person)
            except UpstreamError as exc:
                notes.append(
                    f"The portal's failed transfer {fix.dismiss.reference} could not be "
                    f"dismissed: {in_words(exc)}"
                )
        comparison, still_open = await check_followed(
            fix.invoice,
            accounting=self.accounting,
            portal=self.portal,
            store=self.followups,
            clock=self.clock,
            tolerance=self.tolerance,
        )
        done = await self.records.move(
            proposal_id=proposal.id, frm=(S.WRITTEN,), to=S.DONE, detail=" ".join(notes) or None
        )
        final = done or proposal
        await self._audit(
            final,
            proposal.decided_by or "",
            "fix.apply",
            "done",
            f"dismissed={dismissed} in_sync={not comparison.out_of_sync}",
        )
        return FixResult(
            final,
            comparison=comparison,
            followups=tuple(still_open),
            dismissed=dismissed,
            needs_resync=comparison.out_of_sync,
        )

    async def _stop(
        self, proposal: Proposal, to: ProposalState, reason: str, *, code: str | None = None
    ) -> Proposal:
        moved = await self.records.move(
            proposal_id=proposal.id, frm=(S.APPROVED, S.WRITING), to=to, detail=reason
        )
        detail = reason + (f" (QuickBooks code {code})" if code else "")
        await self._audit(proposal, proposal.decided_by or "", "fix.apply", to.value, detail)
        return moved or proposal.model_copy(update={"state": to, "detail": reason})

    async def _prepare(self, comparison: Comparison, evidence: Evidence) -> Fix | NoFix:
        followups = await self.followups.open_for(invoice=evidence.number)
        return prepare_for(evidence, comparison.diagnosis, followups)

    async def _read(self, number: str) -> tuple[Comparison, Evidence | None]:
        return await examine_invoice(
            number,
            accounting=self.accounting,
            portal=self.portal,
            clock=self.clock,
            tolerance=self.tolerance,
            always_gather=True,
        )

    async def _audit(
        self, proposal: Proposal, actor: str, action: str, outcome: str, detail: str
    ) -> None:
        text = f"proposal {proposal.id}: {proposal.fix.headline}" + (
            f"; {detail}" if detail else ""
        )
        await self.audit.record(
            actor=actor, action=action, target=proposal.invoice, outcome=outcome, detail=text
        )
