"""Pure diagnosis: from the evidence about one invoice to its likely cause and the fix.

The first rule that applies names the cause: in sync, not found; the portal's link broken
(recreated, deleted); voided; a portal payment not in QuickBooks; rounding; an unapplied
credit that explains the difference; changed after the portal's last sync; else unknown.
Whatever the cause, a resync never gets offered plainly while it would take a client's
payment out of view (``hidden_by_resync``).
"""

from __future__ import annotations

from decimal import Decimal

from services.diagnosis_facts import Facts, checked_lines, day, make, money
from services.diagnosis_invoice import deleted, recreated, voided
from services.models import (
    Action,
    Cause,
    Confidence,
    Diagnosis,
    Evidence,
    TransferStatus,
    Verdict,
)

PLAIN_RESYNC = (Action.RESYNC, Action.FULL_RESYNC, Action.INVESTIGATE)
"""Actions that offer a resync without asking to fix anything first."""


def diagnose(evidence: Evidence) -> Diagnosis:
    """The likely cause, its confidence, the supporting lines and the recommended action."""
    facts = Facts(evidence)
    diagnosis = _cause(facts)
    hidden = facts.hidden_by_resync()
    update: dict[str, object] = {
        "checked": checked_lines(facts),
        "hidden_by_resync": tuple(line for line, _ in hidden),
        "money_at_risk": sum((amount for _, amount in hidden), Decimal(0)),
    }
    if hidden and diagnosis.action in PLAIN_RESYNC:  # never hide a client's money blindly
        update["action"] = Action.FIX_IN_QUICKBOOKS
        update["steps"] = diagnosis.steps or (
            "Account for the portal payments listed above in QuickBooks first, then resync.",
        )
    return diagnosis.model_copy(update=update)


def _cause(f: Facts) -> Diagnosis:
    c = f.comparison
    if c.verdict is Verdict.IN_SYNC:
        return make(f, Cause.IN_SYNC, Confidence.HIGH, "Both sides agree.", action=Action.NONE)
    if c.verdict is Verdict.NOT_FOUND:
        summary = f"Invoice {f.number} is in neither QuickBooks Online nor the portal."
        return make(f, Cause.UNKNOWN, Confidence.LOW, summary, action=Action.NONE)
    for rule in (recreated, deleted, voided, _portal_payments, _rounding, _credit, _stale):
        found = rule(f)
        if found is not None:
            return found
    return _unknown(f)


def _portal_payments(f: Facts) -> Diagnosis | None:
    money_payments = f.money_payments()
    if not money_payments:
        return None
    lines = f.transfer_lines()
    steps: list[str] = []
    failed = [p for p in money_payments if p.status is TransferStatus.FAILED]
    for payment in failed:
        held = f.qbo_payment_like(payment.reference)
        if held is not None and held.unapplied > 0:
            lines.append(
                f"QuickBooks already has payment {payment.reference} of "
                f"{money(held.total, f.currency)} from {f.customer}"
                + (f" dated {day(held.txn_date)}" if held.txn_date else "")
                + ", applied to no invoice (entered by hand?)."
            )
            steps.append(f"In QuickBooks, apply payment {payment.reference} to invoice {f.number}.")
        else:
            steps.append(
                f"In QuickBooks, receive payment {payment.reference} of "
                f"{money(payment.amount, f.currency)} on invoice {f.number} (or find where it "
                "was recorded and correct it)."
            )
    total = sum((p.amount for p in money_payments), Decimal(0))
    if f.difference is not None and f.difference == total:
        lines.append(
            f"The portal shows {money(total, f.currency)} less than QuickBooks: exactly "
            + ("that payment." if len(money_payments) == 1 else "those payments.")
        )
    if failed:
        steps.append("In the portal, mark the failed transfer resolved so it is not retried.")
        steps.append("Then resync the invoice.")
        return make(
            f,
            Cause.PAYMENT_NOT_TRANSFERRED,
            Confidence.HIGH,
            "A payment made in the portal failed to post to QuickBooks: a resync would hide it.",
            evidence=tuple(lines),
            action=Action.FIX_IN_QUICKBOOKS,
            steps=tuple(steps),
        )
    return make(
        f,
        Cause.PAYMENT_NOT_TRANSFERRED,
        Confidence.MEDIUM,
        "A payment made in the portal has not reached QuickBooks yet: a resync would hide it.",
        evidence=tuple(lines),
        action=Action.NONE,
        steps=("Wait for the portal's payment run to post it, then check again.",),
    )


def _rounding(f: Facts) -> Diagnosis | None:
    d = f.difference
    if d is None or d == 0 or abs(d) > f.evidence.tolerance:
        return None
    summary = (
        f"{money(abs(d), f.currency)} apart, within the "
        f"{money(f.evidence.tolerance, f.currency)} tolerance: not a discrepancy."
    )
    lines = (
        "QuickBooks, the PSA and the portal round tax differently; a few cents apart is "
        "expected (MONEY_TOLERANCE sets how many).",
    )
    return make(f, Cause.ROUNDING, Confidence.HIGH, summary, evidence=lines, action=Action.NONE)


def _credit(f: Facts) -> Diagnosis | None:
    d = f.difference
    credits = f.unapplied_credits()
    if d is None or d <= 0 or not credits:
        return None
    available = sum((amount for _, amount, _ in credits), Decimal(0))
    exact = [c for c in credits if c[1] == d]
    if not exact and available != d and available < d:
        return None
    lines = [line for _, _, line in (exact or credits)]
    lines.append(
        f"The portal shows {money(d, f.currency)} less than QuickBooks"
        + (": exactly that credit." if exact or available == d else ".")
    )
    if f.stale:
        lines.append(f.stale_line())
    steps = [
        f"In QuickBooks, apply {name} to invoice {f.number} (Receive payment: tick the invoice "
        "and the credit)."
        for name, _, _ in (exact or credits)
    ]
    steps.append("Then resync the invoice if the portal still differs.")
    return make(
        f,
        Cause.CREDIT_NOT_APPLIED,
        Confidence.HIGH if exact or available == d else Confidence.MEDIUM,
        f"A credit on {f.customer} is not applied to the invoice in QuickBooks.",
        evidence=tuple(lines),
        action=Action.FIX_IN_QUICKBOOKS,
        steps=tuple(steps),
    )


def _stale(f: Facts) -> Diagnosis | None:
    if not f.stale:
        return None
    lines = [f.stale_line()]
    return make(
        f,
        Cause.STALE_COPY,
        Confidence.HIGH if f.evidence.gathered and not f.evidence.gaps else Confidence.MEDIUM,
        "Changed in QuickBooks after the portal's last sync: a resync fixes it.",
        evidence=tuple(lines),
        action=Action.RESYNC,
    )


def _unknown(f: Facts) -> Diagnosis:
    action = Action.NONE if f.acct is None else Action.INVESTIGATE
    return make(
        f,
        Cause.UNKNOWN,
        Confidence.LOW,
        "Nothing I checked explains the difference.",
        evidence=tuple(f.transfer_lines()),
        action=action,
    )
