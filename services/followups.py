"""Follow-ups: money a resync took out of view, kept in sight until it is accounted for.

A follow-up is opened for every amount a person acknowledged before a write to the portal
(services.guard). It is closed only when the evidence shows the money accounted for (the
payment applied in QuickBooks or posted there by the portal, the credit applied, the
failed transfer dismissed in the portal), never because the two balances match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from services.causes import AtRisk, RiskKind
from services.check import examine_invoice
from services.comparison import DEFAULT_MONEY_TOLERANCE, Comparison, Evidence
from services.errors import BotError, NotAllowedError
from services.models import Frozen, TransferStatus, UtcDateTime, utcnow
from services.ports import AccountingSystem, BillingPortal


class FollowUp(Frozen):
    id: int
    invoice: str
    kind: RiskKind
    reference: str
    amount: Decimal
    what: str
    acknowledged_by: str
    job_id: str | None = None
    opened_at: UtcDateTime
    closed_at: UtcDateTime | None = None
    closed_because: str | None = None
    closed_by: str | None = None
    """Who marked it accounted for by hand (an unexplained difference); None otherwise."""
    fix_ready: bool | None = None
    """Whether the evidence just read lets the bot prepare a fix in QuickBooks for it
    (services.fixes); None when it was listed without reading any."""


class FollowUpStore(Protocol):
    """Where follow-ups live (the ``follow_ups`` table). Keyword-only methods."""

    async def open(
        self, *, invoice: str, risk: AtRisk, acknowledged_by: str, job_id: str | None
    ) -> FollowUp:
        """Open one (or return the open one for the same invoice, kind and reference)."""
        ...

    async def open_for(self, *, invoice: str) -> list[FollowUp]: ...

    async def all_open(self, *, limit: int = 200) -> list[FollowUp]:
        """Every open follow-up, the largest amount first."""
        ...

    async def close(
        self, *, followup_id: int, because: str, at: datetime, by: str | None = None
    ) -> bool:
        """Close it (``by``: the person who did, by hand); False when it was not open."""
        ...

    async def get(self, *, followup_id: int) -> FollowUp | None: ...

    async def closed_by_hand(self, *, limit: int = 10) -> list[FollowUp]:
        """The follow-ups people marked accounted for, the latest first."""
        ...


PAYMENTS = (RiskKind.FAILED_PAYMENT, RiskKind.PENDING_PAYMENT, RiskKind.ORPHANED_PAYMENT)


def settled(followup: FollowUp, evidence: Evidence) -> str | None:
    """Why the evidence shows the follow-up's money accounted for, or None. Evidence with
    gaps settles nothing (what could not be read may be exactly the money)."""
    if not evidence.gathered or evidence.gaps:
        return None
    wanted = followup.reference.strip().lower()
    if followup.kind in PAYMENTS:
        for payment in evidence.payments:
            if (payment.reference or "").strip().lower() == wanted and payment.unapplied == 0:
                return f"payment {followup.reference} is applied in QuickBooks"
        mine = [p for p in evidence.portal_payments if p.reference.strip().lower() == wanted]
        if followup.kind is not RiskKind.ORPHANED_PAYMENT:
            if not mine:
                return f"the portal no longer lists {followup.reference} (dismissed or refunded)"
            if all(p.status is TransferStatus.POSTED for p in mine):
                return f"the portal posted {followup.reference} to QuickBooks"
        return None
    if followup.kind is RiskKind.UNAPPLIED_CREDIT:
        memos = [m for m in evidence.credit_memos if (m.number or m.id).lower() == wanted]
        payments = [p for p in evidence.payments if (p.reference or p.id).lower() == wanted]
        if not any(m.remaining > 0 for m in memos) and not any(p.unapplied > 0 for p in payments):
            return f"{followup.reference} is applied in QuickBooks"
    return None


async def review(
    store: FollowUpStore,
    number: str,
    evidence: Evidence | None,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> list[FollowUp]:
    """Close the invoice's follow-ups the evidence settles; the ones still open."""
    still_open = []
    for followup in await store.open_for(invoice=number):
        because = settled(followup, evidence) if evidence is not None else None
        if because is None:
            still_open.append(followup if evidence is None else _with_fix(followup, evidence))
        else:
            await store.close(followup_id=followup.id, because=because, at=clock())
    return still_open


def _with_fix(followup: FollowUp, evidence: Evidence) -> FollowUp:
    # Imported here: services.fixes applies its fixes through this module.
    from services.fixes.owed import prepare_followup_fix
    from services.fixes.prepare import Fix

    ready = isinstance(prepare_followup_fix(followup, evidence), Fix)
    return followup.model_copy(update={"fix_ready": ready})


MIN_REASON, MAX_REASON = 3, 200
"""A reason to mark money accounted for by hand: a few words, at most a sentence or two."""


@dataclass(frozen=True)
class Closer:
    """Who wants to mark a follow-up accounted for by hand. ``approver``: whether they are
    one of the approvers (FIX_APPROVERS), or None when no approvers are named."""

    user: str
    approver: bool | None = None


async def accountable(store: FollowUpStore, followup_id: int, closer: Closer) -> FollowUp:
    """The follow-up, if ``closer`` may mark it accounted for by hand: open, an unexplained
    difference, which no evidence can ever settle (a payment, a credit or a transfer closes
    by itself once QuickBooks or the portal shows it accounted for), and not on their word
    alone: whoever acknowledged hiding the money cannot close it, and when approvers are
    named only they can."""
    followup = await store.get(followup_id=followup_id)
    if followup is None or followup.closed_at is not None:
        raise BotError("That follow-up is already closed: nothing was changed.")
    if followup.kind is not RiskKind.UNEXPLAINED:
        raise BotError(
            f"{followup.reference} ({followup.amount}) on invoice {followup.invoice} closes by "
            "itself once QuickBooks or the portal shows it accounted for: nothing was changed."
        )
    who = (
        "one of the approvers named in FIX_APPROVERS"
        if closer.approver is not None
        else ("someone else")
    )
    if closer.user == followup.acknowledged_by:
        raise NotAllowedError(
            f"You acknowledged the {followup.amount} on invoice {followup.invoice} when you "
            f"resynced anyway, so {who} must mark it accounted for: nothing was changed."
        )
    if closer.approver is False:
        raise NotAllowedError(
            "Only the approvers named in FIX_APPROVERS may mark money accounted for by hand: "
            "ask one of them. Nothing was changed."
        )
    return followup


async def mark_accounted_for(
    store: FollowUpStore,
    followup_id: int,
    *,
    by: Closer,
    reason: str,
    clock: Callable[[], datetime] = utcnow,
) -> FollowUp:
    """Close one follow-up by hand (``accountable``), only with a reason; who, when and why
    are kept. Closes that follow-up only."""
    reason = " ".join(reason.split())
    if not MIN_REASON <= len(reason) <= MAX_REASON:
        raise BotError(
            f"Say in a few words ({MIN_REASON} to {MAX_REASON} characters) how the money is "
            "accounted for: nothing was changed."
        )
    followup = await accountable(store, followup_id, by)
    at, because = clock(), f"marked accounted for: {reason}"
    if not await store.close(followup_id=followup.id, because=because, at=at, by=by.user):
        raise BotError("That follow-up is already closed: nothing was changed.")
    closed = {"closed_at": at, "closed_because": because, "closed_by": by.user}
    return followup.model_copy(update=closed)


async def check_followed(
    number: str,
    *,
    accounting: AccountingSystem,
    portal: BillingPortal,
    store: FollowUpStore,
    clock: Callable[[], datetime] = utcnow,
    tolerance: Decimal = DEFAULT_MONEY_TOLERANCE,
) -> tuple[Comparison, list[FollowUp]]:
    """The invoice's check, and its money still to account for: with follow-ups open, the
    evidence is read even when the balances match, and settles the ones it accounts for."""
    pending = await store.open_for(invoice=number)
    comparison, evidence = await examine_invoice(
        number,
        accounting=accounting,
        portal=portal,
        clock=clock,
        tolerance=tolerance,
        always_gather=bool(pending),
    )
    if not pending:
        return comparison, []
    return comparison, await review(store, number, evidence, clock=clock)
