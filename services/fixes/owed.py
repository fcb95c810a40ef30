"""Fixes for money a resync took out of view: the balances may match by now, but the
payment or the credit is still apart in QuickBooks (a follow-up). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from services.causes import Cause, Diagnosis, RiskKind
from services.comparison import Evidence
from services.diagnosis_facts import Facts, money
from services.fixes.prepare import Fix, FixKind, NoFix, new_fix, prepare_fix
from services.models import TransferStatus

if TYPE_CHECKING:
    from services.followups import FollowUp

FOLLOWUP_CAUSES = {
    RiskKind.FAILED_PAYMENT: Cause.PAYMENT_NOT_TRANSFERRED,
    RiskKind.ORPHANED_PAYMENT: Cause.INVOICE_RECREATED,
    RiskKind.UNAPPLIED_CREDIT: Cause.CREDIT_NOT_APPLIED,
}
"""Follow-ups whose money a fix in QuickBooks can account for, and the cause it was."""


def prepare_followup_fix(followup: FollowUp, evidence: Evidence) -> Fix | NoFix:
    """The fix for money a resync took out of view (the balances may match by now), from
    the evidence still in QuickBooks: the unapplied payment or credit memo, and the portal's
    transfer to dismiss if it still shows as failed."""
    number, ref = evidence.number, followup.reference
    cause = FOLLOWUP_CAUSES.get(followup.kind)
    if cause is None:
        return NoFix(
            invoice=number,
            reason=f"{ref} ({money(followup.amount)}) is not money the bot can account for "
            "with a change in QuickBooks.",
        )
    if not evidence.gathered or evidence.gaps:
        return NoFix(
            invoice=number,
            reason="Part of the evidence could not be read, so no change to the books is "
            "prepared. Check again in a minute.",
        )
    f = Facts(evidence)
    if f.acct is None:
        return NoFix(invoice=number, reason=f"QuickBooks has no invoice {number} to fix.")
    wanted = ref.strip().lower()
    if followup.kind is RiskKind.UNAPPLIED_CREDIT:
        for memo in evidence.credit_memos:
            if (memo.number or memo.id).strip().lower() == wanted and memo.remaining > 0:
                amount = min(memo.remaining, followup.amount, f.acct.balance)
                if amount > 0:
                    return new_fix(
                        f, kind=FixKind.APPLY_CREDIT, cause=cause, amount=amount, memo=memo
                    )
    held = next(
        (
            p
            for p in evidence.payments
            if (p.reference or p.id).strip().lower() == wanted and p.unapplied > 0
        ),
        None,
    )
    if held is None:
        return NoFix(
            invoice=number,
            reason=f"QuickBooks holds nothing unapplied like {ref} to apply to invoice "
            f"{number}: it must be accounted for in QuickBooks by hand.",
        )
    if f.acct.balance <= 0:
        return NoFix(
            invoice=number,
            reason=f"QuickBooks shows invoice {number} as paid: applying {ref} would overpay "
            "it. Refund it or record it as a credit.",
        )
    failed = next(
        (
            p
            for p in f.portal_payments
            if p.reference.strip().lower() == wanted and p.status is TransferStatus.FAILED
        ),
        None,
    )
    return new_fix(
        f,
        kind=FixKind.APPLY_PAYMENT,
        cause=cause,
        amount=min(followup.amount, held.unapplied, f.acct.balance),
        payment=held,
        dismiss=failed,
    )


def prepare_for(
    evidence: Evidence, diagnosis: Diagnosis | None, followups: Sequence[FollowUp]
) -> Fix | NoFix:
    """The fix the diagnosis calls for; else the one for the invoice's money still to
    account for (a resync anyway made the balances match, the money is still apart)."""
    fix = prepare_fix(evidence, diagnosis)
    if isinstance(fix, Fix):
        return fix
    for followup in followups:
        found = prepare_followup_fix(followup, evidence)
        if isinstance(found, Fix):
            return found
        if diagnosis is None:  # in sync: why the money still apart gets no fix
            fix = found
    return fix
