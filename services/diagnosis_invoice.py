"""Diagnosis rules about the invoice itself in QuickBooks: recreated (the portal's link is
broken), deleted, voided. Pure."""

from __future__ import annotations

from decimal import Decimal

from services.causes import Action, Cause, Confidence, Diagnosis
from services.diagnosis_facts import Facts, day, make, money, when
from services.models import TransferStatus


def recreated(f: Facts) -> Diagnosis | None:
    if not f.link_broken or f.acct is None:
        return None
    acct = f.acct
    lines = [
        f"The portal's copy is linked to QuickBooks invoice Id {f.link_id}, which no longer "
        "exists.",
        f"QuickBooks invoice {f.number} is now Id {acct.id}"
        + (f", created {when(acct.created_at)}." if acct.created_at else "."),
    ]
    old = f.posted_on_old_invoice()
    steps: list[str] = []
    for payment in old:
        lines.append(
            f"Portal payment {payment.reference} of {money(payment.amount, f.currency)} on "
            f"{day(payment.paid_at)} was posted to the deleted invoice."
        )
        held = f.qbo_payment_like(payment.reference)
        if held is not None and held.unapplied > 0:
            lines.append(
                f"QuickBooks now holds payment {payment.reference} of "
                f"{money(held.unapplied, f.currency)} unapplied on {f.customer}."
            )
            steps.append(
                f"In QuickBooks, apply payment {payment.reference} "
                f"({money(held.unapplied, f.currency)}) to invoice {f.number} (Id {acct.id})."
            )
        else:
            steps.append(
                f"In QuickBooks, receive portal payment {payment.reference} of "
                f"{money(payment.amount, f.currency)} on invoice {f.number} (Id {acct.id})."
            )
    lines += f.transfer_lines()
    if old or f.money_payments():
        steps.append("Then run a full integration resync: it re-links the portal's copy by number.")
        return make(
            f,
            Cause.INVOICE_RECREATED,
            Confidence.HIGH,
            "The portal still links the deleted invoice, and the client's payment is on it: a "
            "resync would hide that payment.",
            evidence=tuple(lines),
            action=Action.FIX_IN_QUICKBOOKS,
            steps=tuple(steps),
            record_resync_works=False,
        )
    return make(
        f,
        Cause.INVOICE_RECREATED,
        Confidence.HIGH,
        "The portal still links the deleted invoice: a full resync re-links it by number "
        "(a record resync follows the old link and fails).",
        evidence=tuple(lines),
        action=Action.FULL_RESYNC,
        record_resync_works=False,
    )


def deleted(f: Facts) -> Diagnosis | None:
    if f.acct is not None or f.portal is None or not f.link_gone:
        return None
    lines = [
        f"QuickBooks has no invoice {f.number}, and the Id the portal links to ({f.link_id}) no "
        "longer exists: it was deleted."
    ]
    lines += f.transfer_lines() + f.old_payment_lines()
    steps = [
        f"If the deletion was a mistake, recreate invoice {f.number} in QuickBooks and run a "
        "full resync; otherwise close it in the portal."
    ]
    if f.portal_payments:
        steps.insert(0, "Refund the portal payments above, or apply them in QuickBooks.")
    return make(
        f,
        Cause.INVOICE_DELETED,
        Confidence.HIGH,
        "The portal still shows it; a resync cannot fix this.",
        evidence=tuple(lines),
        action=Action.FIX_IN_QUICKBOOKS if f.portal_payments else Action.NONE,
        steps=tuple(steps),
    )


def voided(f: Facts) -> Diagnosis | None:
    record = f.current_record
    if record is None or not record.voided or f.portal is None or f.portal.balance == 0:
        return None
    lines = [
        f"QuickBooks voided invoice {f.number}"
        + (f" on {when(record.last_updated)}" if record.last_updated else "")
        + f": its balance is {money(Decimal(0), f.currency)}; the portal still shows "
        f"{money(f.portal.balance, f.currency)} open."
    ]
    paid = [p for p in f.portal_payments if p.status is not TransferStatus.FAILED]
    lines += f.transfer_lines() + [
        f"Portal payment {p.reference} of {money(p.amount, f.currency)} on {day(p.paid_at)} "
        f"was made on it ({p.status.value})."
        for p in paid
    ]
    if f.portal_payments:
        return make(
            f,
            Cause.INVOICE_VOIDED,
            Confidence.HIGH,
            "The client paid it in the portal: a resync would hide that payment.",
            evidence=tuple(lines),
            action=Action.FIX_IN_QUICKBOOKS,
            steps=(
                "Refund the client's portal payment, or apply it to another invoice in QuickBooks.",
                "Then resync the invoice: the portal will show it void.",
            ),
        )
    return make(
        f,
        Cause.INVOICE_VOIDED,
        Confidence.HIGH,
        "Still open in the portal: a resync marks it void there too.",
        evidence=tuple(lines),
        action=Action.RESYNC,
    )
