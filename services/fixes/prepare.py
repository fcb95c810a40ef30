"""Preparing a fix in QuickBooks from the evidence of a diagnosis, and telling whether the
evidence still calls for exactly that fix.

Three causes have a fix the bot can make in QuickBooks:

- a portal payment failed to transfer because the same payment was entered by hand and
  applied to no invoice (11265): apply that QuickBooks payment to the invoice;
- the invoice was recreated after a portal payment was posted to it (11267): apply the
  payment the deletion left unapplied to the new invoice;
- a credit is not applied (11266): apply the credit memo to the invoice (a $0 payment).

Anything else gets ``NoFix`` with the reason in words. Pure: no I/O.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from services.causes import Cause, Diagnosis
from services.comparison import Evidence
from services.diagnosis_facts import Facts, money, when
from services.models import AccountingPayment, CreditMemo, Frozen, PortalPayment, TransferStatus


class FixKind(StrEnum):
    APPLY_PAYMENT = "apply_payment"
    APPLY_CREDIT = "apply_credit_memo"


class Fix(Frozen):
    """One change in QuickBooks, as the evidence read at the time calls for it."""

    invoice: str
    kind: FixKind
    cause: Cause
    invoice_id: str
    invoice_sync_token: str | None
    customer: str
    amount: Decimal
    currency: str | None = None
    payment: AccountingPayment | None = None
    """The payment to apply (APPLY_PAYMENT), as read: its SyncToken is the one written."""
    memo: CreditMemo | None = None
    """The credit memo to apply (APPLY_CREDIT)."""
    dismiss: PortalPayment | None = None
    """The portal's failed transfer of the same money, dismissed once QuickBooks has it."""
    qbo_before: Decimal
    portal_before: Decimal | None

    @property
    def qbo_after(self) -> Decimal:
        return self.qbo_before - self.amount

    @property
    def portal_after(self) -> Decimal | None:
        """The portal mirrors QuickBooks: after the fix (and a resync if still needed)."""
        return None if self.portal_before is None else self.qbo_after

    @property
    def reference(self) -> str:
        if self.payment is not None:
            return self.payment.reference or self.payment.id
        assert self.memo is not None
        return self.memo.number or self.memo.id

    @property
    def transaction(self) -> str:
        """Which QuickBooks transaction is written, in words."""
        if self.kind is FixKind.APPLY_PAYMENT:
            assert self.payment is not None
            return f"payment {self.reference} (QuickBooks Payment Id {self.payment.id})"
        assert self.memo is not None
        return f"credit memo {self.reference} (QuickBooks CreditMemo Id {self.memo.id})"

    @property
    def headline(self) -> str:
        what = "payment" if self.kind is FixKind.APPLY_PAYMENT else "credit memo"
        return (
            f"Apply {what} {self.reference} ({money(self.amount, self.currency)}) to invoice "
            f"{self.invoice} in QuickBooks"
        )

    def changes(self) -> tuple[str, ...]:
        """What will change, field by field."""
        m = self._m
        if self.kind is FixKind.APPLY_PAYMENT:
            assert self.payment is not None
            p = self.payment
            lines = [
                f"QuickBooks Payment {p.id} ({self.reference}), SyncToken {p.sync_token}: "
                f"`Line` gains {m(self.amount)} linked to Invoice {self.invoice_id}; "
                f"`UnappliedAmt` {m(p.unapplied)} → {m(p.unapplied - self.amount)}.",
            ]
        else:
            assert self.memo is not None
            lines = [
                f"A new $0.00 QuickBooks Payment for {self.customer}: one `Line` of "
                f"{m(self.amount)} linked to Invoice {self.invoice_id}, one linked to CreditMemo "
                f"{self.memo.id} ({self.reference}); the memo's credit left "
                f"{m(self.memo.remaining)} → {m(self.memo.remaining - self.amount)}.",
            ]
        lines.append(
            f"Invoice {self.invoice} in QuickBooks: `Balance` {m(self.qbo_before)} → "
            f"{m(self.qbo_after)}."
        )
        if self.portal_before is not None:
            lines.append(
                f"Invoice {self.invoice} in the portal: {m(self.portal_before)} → "
                f"{m(self.qbo_after)} (resynced only if it still differs)."
            )
        if self.dismiss is not None:
            lines.append(
                f"In the portal, the failed transfer of {self.dismiss.reference} "
                f"({m(self.dismiss.amount)}) is dismissed: QuickBooks will have it."
            )
        return tuple(lines)

    def _m(self, amount: Decimal) -> str:
        return money(amount, self.currency)


class NoFix(Frozen):
    invoice: str
    reason: str


def prepare_fix(evidence: Evidence, diagnosis: Diagnosis | None) -> Fix | NoFix:
    """The fix the evidence calls for, or why there is none."""
    number = evidence.number
    if diagnosis is None or diagnosis.cause is Cause.IN_SYNC:
        return NoFix(invoice=number, reason=f"Invoice {number} is in sync: nothing to fix.")
    if not diagnosis.complete or evidence.gaps:
        return NoFix(
            invoice=number,
            reason="Part of the evidence could not be read, so no change to the books is "
            "prepared. Check again in a minute.",
        )
    f = Facts(evidence)
    if f.acct is None:
        return NoFix(invoice=number, reason=f"QuickBooks has no invoice {number} to fix.")
    if diagnosis.cause is Cause.PAYMENT_NOT_TRANSFERRED:
        return _failed_transfer(f)
    if diagnosis.cause is Cause.INVOICE_RECREATED:
        return _recreated(f)
    if diagnosis.cause is Cause.CREDIT_NOT_APPLIED:
        return _credit(f)
    return NoFix(invoice=number, reason=_why_not(diagnosis.cause, number))


def _why_not(cause: Cause, number: str) -> str:
    if cause is Cause.STALE_COPY:
        return "QuickBooks is right and the portal's copy is stale: a resync fixes it."
    if cause is Cause.ROUNDING:
        return "The difference is rounding, within the tolerance: nothing to change."
    if cause in (Cause.INVOICE_VOIDED, Cause.INVOICE_DELETED):
        return (
            f"Invoice {number} was voided or deleted in QuickBooks: what to do with the money "
            "on it is a decision for a person, not a change the bot prepares."
        )
    return (
        "Nothing on record explains the difference, so the bot will not guess at a change to "
        "the books. Look into it in QuickBooks."
    )


def new_fix(f: Facts, **fields: object) -> Fix:
    assert f.acct is not None
    record = f.current_record
    return Fix(
        invoice=f.number,
        invoice_id=f.acct.id,
        invoice_sync_token=record.sync_token if record is not None else None,
        customer=f.customer,
        currency=f.currency,
        qbo_before=f.acct.balance,
        portal_before=f.portal.balance if f.portal is not None else None,
        **fields,
    )


def _failed_transfer(f: Facts) -> Fix | NoFix:
    assert f.acct is not None
    failed = [p for p in f.portal_payments if p.status is TransferStatus.FAILED]
    for portal_payment in failed:
        held = f.qbo_payment_like(portal_payment.reference)
        if held is None or held.unapplied <= 0:
            continue
        if f.acct.balance <= 0:
            return _overpaid(f, portal_payment)
        amount = min(portal_payment.amount, held.unapplied, f.acct.balance)
        return new_fix(
            f,
            kind=FixKind.APPLY_PAYMENT,
            cause=Cause.PAYMENT_NOT_TRANSFERRED,
            amount=amount,
            payment=held,
            dismiss=portal_payment,
        )
    if failed and f.acct.balance <= 0:
        return _overpaid(f, failed[0])
    refs = ", ".join(p.reference for p in failed) or "the portal's payment"
    return NoFix(
        invoice=f.number,
        reason=f"QuickBooks holds no unapplied payment like {refs} to apply: it must be "
        "received in QuickBooks by hand (the bot does not create payments).",
    )


def _overpaid(f: Facts, payment: PortalPayment) -> NoFix:
    return NoFix(
        invoice=f.number,
        reason=f"QuickBooks shows invoice {f.number} as paid: {payment.reference} "
        f"({money(payment.amount, f.currency)}) is an overpayment. Refund it or record it as a "
        "credit; applying it would overpay the invoice.",
    )


def _recreated(f: Facts) -> Fix | NoFix:
    assert f.acct is not None
    for portal_payment in f.posted_on_old_invoice():
        held = f.qbo_payment_like(portal_payment.reference)
        if held is None or held.unapplied <= 0 or f.acct.balance <= 0:
            continue
        return new_fix(
            f,
            kind=FixKind.APPLY_PAYMENT,
            cause=Cause.INVOICE_RECREATED,
            amount=min(held.unapplied, f.acct.balance),
            payment=held,
        )
    return NoFix(
        invoice=f.number,
        reason="No payment posted to the deleted invoice sits unapplied in QuickBooks: a full "
        "resync re-links the portal's copy.",
    )


def _credit(f: Facts) -> Fix | NoFix:
    assert f.acct is not None
    d = f.difference or Decimal(0)
    memos = [m for m in f.evidence.credit_memos if m.remaining > 0]
    memos.sort(key=lambda m: (m.remaining != d, m.id))  # the exact one first
    for memo in memos:
        amount = min(memo.remaining, d, f.acct.balance)
        if amount > 0:
            return new_fix(
                f,
                kind=FixKind.APPLY_CREDIT,
                cause=Cause.CREDIT_NOT_APPLIED,
                amount=amount,
                memo=memo,
            )
    payments = sorted((p for p in f.evidence.payments if p.unapplied > 0), key=lambda p: p.id)
    for payment in payments:
        amount = min(payment.unapplied, d, f.acct.balance)
        if amount > 0:
            return new_fix(
                f,
                kind=FixKind.APPLY_PAYMENT,
                cause=Cause.CREDIT_NOT_APPLIED,
                amount=amount,
                payment=payment,
            )
    return NoFix(invoice=f.number, reason="No credit is left to apply to the invoice.")


def changed_since(fix: Fix, now: Fix | NoFix, evidence: Evidence) -> str | None:
    """Why the evidence read now no longer calls for exactly ``fix`` (in words), or None."""
    m = fix._m
    if fix.payment is not None:
        current = next((p for p in evidence.payments if p.id == fix.payment.id), None)
        if current is None or current.sync_token != fix.payment.sync_token:
            at = f" {when(current.last_updated)}" if current and current.last_updated else ""
            left = f" ({m(current.unapplied)} left unapplied)" if current else ""
            return f"payment {fix.reference} was changed in QuickBooks{at}{left}"
    if fix.memo is not None:
        memo = next((c for c in evidence.credit_memos if c.id == fix.memo.id), None)
        if memo is None or memo.remaining != fix.memo.remaining:
            at = f" {when(memo.last_updated)}" if memo and memo.last_updated else ""
            return f"credit memo {fix.reference} was changed in QuickBooks{at}"
    if isinstance(now, NoFix):
        return f"the evidence no longer calls for it: {now.reason}"
    if now.qbo_before != fix.qbo_before:
        return (
            f"invoice {fix.invoice} now owes {m(now.qbo_before)} in QuickBooks "
            f"(it owed {m(fix.qbo_before)})"
        )
    if now.invoice_sync_token != fix.invoice_sync_token or now.invoice_id != fix.invoice_id:
        return f"invoice {fix.invoice} was changed in QuickBooks since"
    if now.portal_before != fix.portal_before:
        before = m(fix.portal_before) if fix.portal_before is not None else "nothing"
        shown = m(now.portal_before) if now.portal_before is not None else "nothing"
        return f"the portal now shows {shown} on invoice {fix.invoice} (it showed {before})"
    if (now.dismiss and now.dismiss.id) != (fix.dismiss and fix.dismiss.id):
        return f"the portal's failed transfer of {fix.reference} is not as it was"
    if now.amount != fix.amount or now.kind is not fix.kind:
        return f"the amount to apply is now {m(now.amount)} (it was {m(fix.amount)})"
    return None
