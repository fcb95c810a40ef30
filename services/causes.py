"""Why the two sides of an invoice differ: the cause, how sure, the fix, and the money a
resync would take out of view."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from services.models import Frozen


class Cause(StrEnum):
    STALE_COPY = "stale_copy"
    PAYMENT_NOT_TRANSFERRED = "payment_not_transferred"
    CREDIT_NOT_APPLIED = "credit_not_applied"
    INVOICE_RECREATED = "invoice_recreated"
    INVOICE_DELETED = "invoice_deleted"
    INVOICE_VOIDED = "invoice_voided"
    ROUNDING = "rounding"
    UNKNOWN = "unknown"
    IN_SYNC = "in_sync"
    """Nothing to explain."""


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Action(StrEnum):
    RESYNC = "resync"
    """A record resync fixes it."""
    FULL_RESYNC = "full_resync"
    """A full integration resync fixes it (it re-links the portal's copy by number)."""
    FIX_IN_QUICKBOOKS = "fix_in_quickbooks_then_resync"
    INVESTIGATE = "investigate"
    """Cause unknown: look into it; a resync only after saying what it would overwrite."""
    NONE = "none"


class RiskKind(StrEnum):
    """What kind of money a write to the portal would take out of view."""

    FAILED_PAYMENT = "failed_payment"
    """A portal payment whose transfer to QuickBooks failed."""
    PENDING_PAYMENT = "pending_payment"
    """A portal payment not posted to QuickBooks yet."""
    ORPHANED_PAYMENT = "orphaned_payment"
    """A portal payment posted to an invoice since deleted or voided in QuickBooks."""
    UNAPPLIED_CREDIT = "unapplied_credit"
    """A credit (memo or payment) the portal showed on the invoice, unapplied in QuickBooks."""
    UNEXPLAINED = "unexplained"
    """A difference nothing on record explains: the portal's figure may be the right one."""


class AtRisk(Frozen):
    """One amount a resync of the invoice would take out of view, with its reference."""

    kind: RiskKind
    reference: str
    """The portal payment's reference (CB-4471), the credit memo's number, or a label."""
    amount: Decimal
    what: str
    """In words, e.g. "portal payment CB-4471 of $10.00 (failed to post)"."""


class Diagnosis(Frozen):
    """The likely cause of a discrepancy, what supports it, and the fix that works."""

    number: str
    cause: Cause
    confidence: Confidence
    summary: str
    """The cause in one line."""
    evidence: tuple[str, ...] = ()
    """The facts that support the cause, one per line."""
    checked: tuple[str, ...] = ()
    """What was looked at (and what could not be read)."""
    action: Action
    steps: tuple[str, ...] = ()
    """What to do by hand first (in QuickBooks), in order."""
    at_risk: tuple[AtRisk, ...] = ()
    """What a resync would take out of view: never written without an acknowledgement
    naming each amount (services.guard)."""
    complete: bool = True
    """False when a source of evidence could not be read: then nothing may be written."""
    record_resync_works: bool = True
    """False when the portal's link is broken: only a full resync re-links it."""
    fix_ready: bool = False
    """True when the bot can prepare the fix in QuickBooks from this evidence
    (services.fixes.prepare): overpayments and unknown causes never."""

    @property
    def hidden_by_resync(self) -> tuple[str, ...]:
        return tuple(risk.what for risk in self.at_risk)

    @property
    def money_at_risk(self) -> Decimal:
        return sum(
            (r.amount for r in self.at_risk if r.kind is not RiskKind.UNEXPLAINED), Decimal(0)
        )

    @property
    def resync_hides_money(self) -> bool:
        return bool(self.at_risk)

    @property
    def offers_plain_resync(self) -> bool:
        return (
            self.complete
            and not self.at_risk
            and self.action in (Action.RESYNC, Action.FULL_RESYNC)
        )
