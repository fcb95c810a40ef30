"""Pure diagnosis: from the evidence about one invoice to its likely cause and the fix.

The first rule that applies names the cause: in sync, not found; the portal's link broken
(recreated, deleted); voided; a portal payment not in QuickBooks; rounding; an unapplied
credit that explains the difference; changed after the portal's last sync; else unknown.
Whatever the cause, a resync never gets offered plainly while it would take a client's
payment out of view (``hidden_by_resync``).
"""

from __future__ import annotations

from decimal import Decimal

from services.causes import Action, AtRisk, Cause, Confidence, Diagnosis, RiskKind
from services.comparison import Evidence, Verdict
from services.diagnosis_facts import Facts, checked_lines, day, make, money
from services.diagnosis_invoice import deleted, recreated, voided
from services.models import PortalPayment, TransferStatus

PLAIN_RESYNC = (Action.RESYNC, Action.FULL_RESYNC, Action.INVESTIGATE)
"""Actions that offer a resync without asking to fix anything first."""
PAYMENT_RISKS = (RiskKind.FAILED_PAYMENT, RiskKind.PENDING_PAYMENT, RiskKind.ORPHANED_PAYMENT)


def diagnose(evidence: Evidence) -> Diagnosis:
    """The likely cause, its confidence, the supporting lines and the recommended action."""
    facts = Facts(evidence)
    diagnosis = _cause(facts)
    hidden: list[AtRisk] = facts.hidden_by_resync()
    if diagnosis.cause is Cause.CREDIT_NOT_APPLIED:
        hidden += _credit_risks(facts)
    remainder = _unexplained(facts, diagnosis.cause)
    if remainder:
        hidden.append(
            AtRisk(
                kind=RiskKind.UNEXPLAINED,
                reference="unexplained",
                amount=remainder,
                what=f"a difference of {money(remainder, facts.currency)} nothing on record explains",
            )
        )
    update: dict[str, object] = {
        "checked": checked_lines(facts),
        "at_risk": tuple(hidden),
        "complete": not evidence.gaps
        and (evidence.gathered or not evidence.comparison.out_of_sync),
    }
    payments = [r for r in hidden if r.kind in PAYMENT_RISKS]
    if payments and diagnosis.action in PLAIN_RESYNC:  # never hide a client's money blindly
        update["action"] = Action.FIX_IN_QUICKBOOKS
        update["steps"] = diagnosis.steps or (
            "Account for the portal payments listed above in QuickBooks first, then resync.",
        )
    diagnosis = diagnosis.model_copy(update=update)
    # Imported here: services.fixes (its service) reads invoices through services.check.
    from services.fixes.prepare import Fix, prepare_fix

    return diagnosis.model_copy(
        update={"fix_ready": isinstance(prepare_fix(evidence, diagnosis), Fix)}
    )


def _credit_risks(f: Facts) -> list[AtRisk]:
    """The credits that explain the difference: a resync would charge the client for them."""
    d = f.difference or Decimal(0)
    credits = f.unapplied_credits()
    exact = [c for c in credits if c[1] == d]
    return [
        AtRisk(
            kind=RiskKind.UNAPPLIED_CREDIT,
            reference=reference,
            amount=amount,
            what=f"{name} of {money(amount, f.currency)} (not applied in QuickBooks)",
        )
        for name, amount, _, reference in (exact or credits)
    ]


def _unexplained(f: Facts, cause: Cause) -> Decimal:
    """What of the difference no cause claims (zero when it is all explained)."""
    d = f.difference
    if d is None or abs(d) <= f.evidence.tolerance:
        return Decimal(0)
    if cause is Cause.UNKNOWN:
        return abs(d)
    if cause is Cause.PAYMENT_NOT_TRANSFERRED and not f.stale:
        rest = d - sum((p.amount for p in f.money_payments()), Decimal(0))
        return abs(rest) if abs(rest) > f.evidence.tolerance else Decimal(0)
    return Decimal(0)


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
        steps.append(_failed_payment_step(f, payment, lines))
    total = sum((p.amount for p in money_payments), Decimal(0))
    if f.difference is not None and f.difference == total:
        lines.append(
            f"The portal shows {money(total, f.currency)} less than QuickBooks: exactly "
            + ("that payment." if len(money_payments) == 1 else "those payments.")
        )
    elif f.difference is not None and f.portal is not None and f.acct is not None:
        rest = f.difference - total
        lines.append(
            f"Without {'that payment' if len(money_payments) == 1 else 'those payments'} "
            f"({money(total, f.currency)}) the portal would show "
            f"{money(f.portal.balance + total, f.currency)} against QuickBooks' "
            f"{money(f.acct.balance, f.currency)}: "
            + (
                f"that {money(abs(rest), f.currency)} is a change in QuickBooks after the "
                "portal's last sync (a resync brings it over)."
                if f.stale
                else f"that {money(abs(rest), f.currency)} is unexplained."
            )
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


def refusal(error: str | None) -> str:
    """QuickBooks' refusal of a portal payment, in one word: duplicate, paid, deleted,
    voided or other."""
    text = (error or "").lower()
    if "duplicate" in text:
        return "duplicate"
    if "already paid" in text or "overpa" in text:
        return "paid"
    if "no invoice" in text or "deleted" in text or "not found" in text:
        return "deleted"
    if "void" in text:
        return "voided"
    return "other"


def _failed_payment_step(f: Facts, payment: PortalPayment, lines: list[str]) -> str:
    """What to do in QuickBooks about one failed transfer, following QuickBooks' refusal."""
    amount = money(payment.amount, f.currency)
    held = f.qbo_payment_like(payment.reference)
    kind = refusal(payment.error)
    if held is not None and held.unapplied > 0:
        lines.append(
            f"QuickBooks already has payment {payment.reference} of "
            f"{money(held.total, f.currency)} from {f.customer}"
            + (f" dated {day(held.txn_date)}" if held.txn_date else "")
            + ", applied to no invoice (entered by hand?)."
        )
        return f"In QuickBooks, apply payment {payment.reference} to invoice {f.number}."
    if f.acct is not None and f.acct.balance == 0 and kind != "deleted":
        lines.append(
            f"QuickBooks shows invoice {f.number} as paid: {payment.reference} ({amount}) "
            "is an overpayment."
        )
        return (
            f"Refund {payment.reference} ({amount}) to {f.customer} in the portal's payment "
            f"gateway, or record it in QuickBooks as a credit for {f.customer}: the invoice "
            "is already paid."
        )
    if kind == "deleted" and f.acct is not None:
        return (
            f"In QuickBooks, receive payment {payment.reference} of {amount} on the recreated "
            f"invoice {f.number} (Id {f.acct.id}): the one it was made against is gone."
        )
    if kind == "duplicate":
        return (
            f"In QuickBooks, find the payment {payment.reference} already recorded for "
            f"{f.customer} and apply it to invoice {f.number}."
        )
    return (
        f"In QuickBooks, receive payment {payment.reference} of {amount} on invoice "
        f"{f.number} (or find where it was recorded and correct it)."
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
    available = sum((amount for _, amount, _, _ in credits), Decimal(0))
    exact = [c for c in credits if c[1] == d]
    if not exact and available != d and available < d:
        return None
    lines = [line for _, _, line, _ in (exact or credits)]
    lines.append(
        f"The portal shows {money(d, f.currency)} less than QuickBooks"
        + (": exactly that credit." if exact or available == d else ".")
    )
    if f.stale:
        lines.append(f.stale_line())
    steps = [
        f"In QuickBooks, apply {name} to invoice {f.number} (Receive payment: tick the invoice "
        "and the credit)."
        for name, _, _, _ in (exact or credits)
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
