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


class Verdict(StrEnum):
    IN_SYNC = "in_sync"
    MISMATCH = "mismatch"
    MISSING_IN_PORTAL = "missing_in_portal"
    MISSING_IN_ACCOUNTING = "missing_in_accounting"
    NOT_FOUND = "not_found"


class Comparison(Frozen):
    """Both sides of one invoice and the verdict."""

    number: str
    accounting: AccountingInvoice | None
    portal: PortalInvoice | None
    verdict: Verdict
    difference: Decimal | None = None
    """accounting balance minus portal balance, when both exist."""
    portal_last_sync_at: UtcDateTime | None = None
    checked_at: UtcDateTime

    @property
    def customer_name(self) -> str | None:
        if self.accounting is not None:
            return self.accounting.customer_name
        if self.portal is not None:
            return self.portal.customer_name
        return None

    @property
    def out_of_sync(self) -> bool:
        return self.verdict in (
            Verdict.MISMATCH,
            Verdict.MISSING_IN_PORTAL,
            Verdict.MISSING_IN_ACCOUNTING,
        )


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
