"""Building evidence by hand for the diagnosis tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.comparison import Comparison, Evidence
from services.models import (
    AccountingInvoice,
    AccountingPayment,
    CreditMemo,
    InvoiceRecord,
    LinkedTxn,
    PortalInvoice,
    PortalPayment,
    TransferStatus,
)
from services.reconcile import compare

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SYNCED = NOW - timedelta(days=5)
BEFORE_SYNC = SYNCED - timedelta(days=5)
AFTER_SYNC = NOW - timedelta(hours=3)
ID = "1006"
CUSTOMER = "63"


def acct(
    balance: str, *, invoice_id: str = ID, updated: datetime = BEFORE_SYNC, total: str = "50.00"
) -> AccountingInvoice:
    return AccountingInvoice(
        id=invoice_id,
        number="11265",
        customer_id=CUSTOMER,
        customer_name="Harbor Dental",
        total=Decimal(total),
        balance=Decimal(balance),
        currency="USD",
        created_at=updated - timedelta(days=1),
        last_updated=updated,
    )


def mirror(balance: str, *, external_id: str | None = ID) -> PortalInvoice:
    return PortalInvoice(
        number="11265",
        external_id=external_id,
        customer_id=CUSTOMER,
        customer_name="Harbor Dental",
        total=Decimal("50.00"),
        balance=Decimal(balance),
        currency="USD",
        status="open",
        integration_id="int-1",
        last_synced_at=SYNCED,
    )


def comparison(
    qbo: AccountingInvoice | None, portal: PortalInvoice | None, *, tolerance: str = "0.05"
) -> Comparison:
    return compare(
        "11265",
        qbo,
        portal,
        checked_at=NOW,
        portal_last_sync_at=SYNCED,
        tolerance=Decimal(tolerance),
    )


def record(
    invoice: AccountingInvoice, *, voided: bool = False, number: str | None = None
) -> InvoiceRecord:
    return InvoiceRecord(
        id=invoice.id,
        number=number or invoice.number,
        customer_id=invoice.customer_id,
        customer_name=invoice.customer_name,
        total=Decimal(0) if voided else invoice.total,
        balance=invoice.balance,
        voided=voided,
        last_updated=invoice.last_updated,
    )


def evidence(c: Comparison, **fields: Any) -> Evidence:
    """Gathered evidence; the current invoice's record unless ``records`` is given."""
    if "records" not in fields and c.accounting is not None:
        fields["records"] = (record(c.accounting),)
    return Evidence(comparison=c, gathered=True, **fields)


def portal_payment(
    reference: str,
    amount: str,
    status: TransferStatus,
    *,
    error: str | None = None,
    invoice_external_id: str | None = ID,
    paid_at: datetime = NOW - timedelta(days=2),
) -> PortalPayment:
    return PortalPayment(
        id=f"pay-{reference}",
        invoice_number="11265",
        reference=reference,
        amount=Decimal(amount),
        currency="USD",
        paid_at=paid_at,
        status=status,
        error=error,
        external_id="9001" if status is TransferStatus.POSTED else None,
        invoice_external_id=invoice_external_id,
    )


def qbo_payment(
    reference: str, total: str, *, unapplied: str = "0", applied_to: str | None = None
) -> AccountingPayment:
    applied: tuple[LinkedTxn, ...] = ()
    if applied_to is not None:
        amount = Decimal(total) - Decimal(unapplied)
        applied = (LinkedTxn(txn_id=applied_to, txn_type="Invoice", amount=amount),)
    return AccountingPayment(
        id=f"9{len(reference)}",
        customer_id=CUSTOMER,
        customer_name="Harbor Dental",
        reference=reference,
        total=Decimal(total),
        unapplied=Decimal(unapplied),
        applied=applied,
        txn_date=(NOW - timedelta(days=2)).date(),
    )


def credit_memo(remaining: str, *, number: str = "CM-1042", total: str | None = None) -> CreditMemo:
    return CreditMemo(
        id="8001",
        number=number,
        customer_id=CUSTOMER,
        customer_name="Harbor Dental",
        total=Decimal(total or remaining),
        remaining=Decimal(remaining),
    )
