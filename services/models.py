"""Domain models. Money is Decimal, times are UTC-aware, invoice numbers are strings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

CENT = Decimal("0.01")


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_aware_utc)]


def money(value: str | int | Decimal) -> Decimal:
    """Parse an amount to a Decimal rounded to cents (never through float)."""
    return Decimal(value).quantize(CENT)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class RecordType(StrEnum):
    INVOICE = "invoice"
    COMPANY = "company"
    CONTACT = "contact"


class AccountingInvoice(Frozen):
    """An invoice as the accounting package (the source of truth) has it."""

    id: str
    number: str
    customer_id: str | None = None
    customer_name: str
    total: Decimal
    balance: Decimal
    currency: str | None = None
    txn_date: date | None = None
    due_date: date | None = None
    created_at: UtcDateTime | None = None
    last_updated: UtcDateTime


class PortalInvoice(Frozen):
    """An invoice as the billing portal mirrors it."""

    number: str
    external_id: str | None = None
    customer_id: str | None = None
    customer_name: str
    total: Decimal
    balance: Decimal
    currency: str | None = None
    status: str
    integration_id: str
    last_synced_at: UtcDateTime | None = None


class IntegrationKind(StrEnum):
    ACCOUNTING = "accounting"
    PSA = "psa"


class Integration(Frozen):
    id: str
    name: str
    provider: str
    kind: IntegrationKind
    last_successful_sync_at: UtcDateTime | None = None
    connected_at: UtcDateTime | None = None
    """When the integration was connected to the portal (None: the portal does not say):
    the portal holds nothing from it before then."""


class PortalRecord(Frozen):
    """A company or a contact as the portal has it: what a record resync of it touches."""

    record_type: RecordType
    id: str
    name: str
    company_id: str | None = None
    """A contact's company."""


class SyncStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (SyncStatus.COMPLETED, SyncStatus.FAILED)


class SyncRun(Frozen):
    id: str
    integration_id: str
    status: SyncStatus
    sync_from: date
    created_at: UtcDateTime
    started_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None
    records_processed: int = 0
    error: str | None = None


class ProcessedRecord(Frozen):
    record_type: RecordType
    number: str
    action: str
    balance_before: Decimal | None = None
    balance_after: Decimal | None = None


class RecordResync(Frozen):
    id: str
    record_type: RecordType
    record_id: str
    status: SyncStatus
    created_at: UtcDateTime
    finished_at: UtcDateTime | None = None
    error: str | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


class TokenSet(Frozen):
    """OAuth2 tokens of one accounting connection. Secrets: never log or post these."""

    access_token: str
    access_token_expires_at: UtcDateTime
    refresh_token: str
    refresh_token_expires_at: UtcDateTime | None = None

    def __repr__(self) -> str:
        return f"TokenSet(access_token_expires_at={self.access_token_expires_at!r}, ...)"

    __str__ = __repr__


# -- Evidence: what the diagnosis looks at ------------------------------------------------


class LinkedTxn(Frozen):
    """A transaction linked to another one (QBO ``LinkedTxn``), with the amount when known."""

    txn_id: str
    txn_type: str
    amount: Decimal | None = None


class InvoiceRecord(Frozen):
    """One accounting invoice as evidence: its Id, what is linked to it, whether voided."""

    id: str
    number: str | None = None
    customer_id: str | None = None
    customer_name: str = ""
    total: Decimal
    balance: Decimal
    voided: bool = False
    linked: tuple[LinkedTxn, ...] = ()
    created_at: UtcDateTime | None = None
    last_updated: UtcDateTime | None = None
    sync_token: str | None = None
    """QBO ``SyncToken``: the version a write must name (services.fixes)."""


class AccountingPayment(Frozen):
    """A payment received in the accounting package and the invoices it is applied to."""

    id: str
    customer_id: str | None = None
    customer_name: str = ""
    reference: str | None = None
    """QBO ``PaymentRefNum``: the check number, or the portal's payment reference."""
    total: Decimal
    unapplied: Decimal = Decimal(0)
    """Received but applied to no invoice: a credit sitting on the customer."""
    applied: tuple[LinkedTxn, ...] = ()
    txn_date: date | None = None
    created_at: UtcDateTime | None = None
    sync_token: str | None = None
    last_updated: UtcDateTime | None = None

    def applied_to(self, invoice_id: str) -> Decimal:
        return sum(
            (
                link.amount or Decimal(0)
                for link in self.applied
                if link.txn_type == "Invoice" and link.txn_id == invoice_id
            ),
            Decimal(0),
        )


class CreditMemo(Frozen):
    """A credit memo on a customer; ``remaining`` is the credit not applied to any invoice."""

    id: str
    number: str | None = None
    customer_id: str | None = None
    customer_name: str = ""
    total: Decimal
    remaining: Decimal
    txn_date: date | None = None
    created_at: UtcDateTime | None = None
    sync_token: str | None = None
    last_updated: UtcDateTime | None = None


class WriteResult(Frozen):
    """What the accounting package answered to a write: the transaction it wrote, its new
    version, and the idempotency key it was sent with."""

    txn_type: str
    txn_id: str
    sync_token: str | None = None
    request_id: str
    unapplied: Decimal | None = None
    intuit_tid: str | None = None
    """Intuit's id of the answer (its ``intuit_tid`` header): what Intuit support asks for."""


class TransferStatus(StrEnum):
    """Where a payment taken by the portal stands with the accounting package."""

    POSTED = "posted"
    PENDING = "pending"
    FAILED = "failed"


class PortalPayment(Frozen):
    """A payment a client made in the portal, and its transfer to the accounting package."""

    id: str
    invoice_number: str
    reference: str
    amount: Decimal
    currency: str | None = None
    paid_at: UtcDateTime
    status: TransferStatus
    error: str | None = None
    """Why the transfer failed (the accounting package's refusal)."""
    transferred_at: UtcDateTime | None = None
    external_id: str | None = None
    """The accounting package's payment Id, once posted."""
    invoice_external_id: str | None = None
    """The accounting invoice Id the payment was made against."""


class AccountingReading(Frozen):
    """One invoice as the accounting package has it, read with its evidence in one request
    (QuickBooks' batch): every invoice with the number, and, when the customer was known
    beforehand, that customer's payments and credit memos (None: not read)."""

    invoice: AccountingInvoice | None = None
    records: tuple[InvoiceRecord, ...] = ()
    customer_id: str | None = None
    """The customer whose payments and credit memos were read."""
    payments: tuple[AccountingPayment, ...] | None = None
    credit_memos: tuple[CreditMemo, ...] | None = None
