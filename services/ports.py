"""Ports: what the use cases need from the outside world. Adapters and fakes implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from services.jobs import Job, JobState, Outcome
from services.models import (
    AccountingInvoice,
    AccountingPayment,
    AccountingReading,
    CreditMemo,
    Integration,
    InvoiceRecord,
    PortalInvoice,
    PortalPayment,
    PortalRecord,
    ProcessedRecord,
    RecordResync,
    RecordType,
    SyncRun,
    TokenSet,
    WriteResult,
)

Listed = tuple[Decimal, datetime | None, str, str | None]
"""An open invoice as a listing gives it: (balance, last change, customer name, currency),
all the digest keeps of it. The last change is QBO's last update, the portal's last sync.
A plain tuple of immutable values: the garbage collector stops tracking it."""


class AccountingSystem(Protocol):
    """The accounting package: the source of truth (QuickBooks Online first)."""

    name: str

    async def get_invoice(self, number: str) -> AccountingInvoice | None:
        """The invoice with this document number, or None."""
        ...

    async def get_invoices(self, numbers: Sequence[str]) -> dict[str, AccountingInvoice]:
        """Batched look-up by document number; absent numbers are left out."""
        ...

    async def read_invoice(
        self, number: str, *, customer_id: str | None = None
    ) -> AccountingReading:
        """The invoice with every invoice of its number and, in the same request when the
        customer is known (``customer_id``, or remembered), the customer's payments and
        credit memos (a check's one round trip)."""
        ...

    def iter_open_invoices(
        self, *, page_size: int = 1000
    ) -> AsyncIterator[list[tuple[str, Listed]]]:
        """Every invoice with a balance above zero, page by page, as (number, listed) pairs:
        only what a listing needs is read from the answers."""
        ...

    async def list_changed_invoices(
        self, *, since: datetime, limit: int = 10_000
    ) -> list[AccountingInvoice]:
        """Invoices changed at or after ``since``: what a full sync from then re-reads."""
        ...

    async def count_changed_invoices(self, *, since: datetime) -> int: ...

    # Evidence (why the sides differ); each call is batched for a handful of invoices.
    async def find_invoice_records(self, numbers: Sequence[str]) -> list[InvoiceRecord]:
        """Every invoice with one of these document numbers (duplicates and voided ones
        too), with what is linked to it."""
        ...

    async def get_invoice_records(self, ids: Sequence[str]) -> list[InvoiceRecord]:
        """The invoices with these Ids; deleted ones are left out."""
        ...

    async def list_payments_for(self, customer_ids: Sequence[str]) -> list[AccountingPayment]:
        """Every payment received from these customers, with the invoices it is applied to."""
        ...

    async def list_credit_memos_for(self, customer_ids: Sequence[str]) -> list[CreditMemo]:
        """Every credit memo of these customers (``remaining`` is the unapplied credit)."""
        ...

    async def aclose(self) -> None: ...


class AccountingWriter(Protocol):
    """Writes to the accounting package. Only ``services.fixes`` calls them (a layering test
    says so): it re-reads the evidence first. The same ``request_id`` never writes twice."""

    async def apply_payment(
        self, payment: AccountingPayment, *, invoice_id: str, amount: Decimal, request_id: str
    ) -> WriteResult:
        """Apply ``amount`` of the payment (at the ``sync_token`` it was read with) to the
        invoice; its other applications are kept."""
        ...

    async def apply_credit_memo(
        self, memo: CreditMemo, *, invoice_id: str, amount: Decimal, request_id: str
    ) -> WriteResult:
        """Apply ``amount`` of the credit memo to the invoice (a $0 payment linking both)."""
        ...


class BillingPortal(Protocol):
    """The billing portal that mirrors the accounting package."""

    async def get_invoice(self, number: str) -> PortalInvoice | None: ...

    async def get_invoices(self, numbers: Sequence[str]) -> dict[str, PortalInvoice]: ...

    async def get_invoice_with_payments(
        self, number: str
    ) -> tuple[PortalInvoice | None, list[PortalPayment]]:
        """The invoice and the payments clients made on it (none when it is absent), in
        one request where the portal offers it."""
        ...

    def iter_open_invoices(
        self, *, page_size: int = 1000
    ) -> AsyncIterator[list[tuple[str, Listed]]]:
        """Every open invoice, page by page, as (number, listed) pairs."""
        ...

    async def list_changed_invoices(self, *, since: datetime) -> list[PortalInvoice]:
        """Every invoice the portal changed at or after ``since``, whatever its status."""
        ...

    async def list_integrations(self) -> list[Integration]: ...

    async def get_record(self, record_type: RecordType, record_id: str) -> PortalRecord | None:
        """A company or a contact by its id; None when the portal has none."""
        ...

    async def get_integration(self, integration_id: str) -> Integration: ...

    async def start_sync(
        self, integration_id: str, *, sync_from: date, idempotency_key: str | None = None
    ) -> SyncRun:
        """Start a full sync. The same ``idempotency_key`` (a job's own) never starts a
        second run: the portal answers as it did the first time."""
        ...

    async def get_sync_run(self, run_id: str) -> SyncRun: ...

    async def list_sync_runs(self, integration_id: str, *, limit: int = 10) -> list[SyncRun]: ...

    async def list_processed_records(self, run_id: str) -> list[ProcessedRecord]: ...

    async def resync_record(
        self, record_type: RecordType, record_id: str, *, idempotency_key: str | None = None
    ) -> RecordResync:
        """Resync one record. The same ``idempotency_key`` never starts a second resync."""
        ...

    async def get_record_resync(self, resync_id: str) -> RecordResync: ...

    async def list_invoice_payments(self, number: str) -> list[PortalPayment]:
        """Payments clients made in the portal on this invoice, with their transfer status;
        empty when the portal does not have the invoice."""
        ...

    async def get_invoice_payments(self, numbers: Sequence[str]) -> dict[str, list[PortalPayment]]:
        """Batched: the portal payments of each invoice it has (absent numbers left out)."""
        ...

    async def list_failed_payments(self, *, since: datetime) -> list[PortalPayment]:
        """Payments whose transfer to the accounting package failed at or after ``since``."""
        ...

    async def dismiss_payment(
        self, payment_id: str, *, idempotency_key: str | None = None
    ) -> PortalPayment:
        """Mark a failed transfer resolved ("Dismiss Syncing"): the portal stops retrying it
        and no longer shows it as pending money. Only ``services.fixes`` calls it."""
        ...

    async def aclose(self) -> None: ...


class TokenStore(Protocol):
    """Where the accounting package's OAuth tokens live (the database in production).

    The refresh token rotates: the adapter saves the newest one before it uses the new
    access token, and ``refresh_lock`` lets one refresher run at a time.
    """

    async def load(self) -> TokenSet | None: ...

    async def save(self, tokens: TokenSet) -> None: ...

    def refresh_lock(self) -> AbstractAsyncContextManager[None]: ...


class JobStore(Protocol):
    """Where the resync runner records a job's steps (the ``resync_jobs`` table in
    production: services.storage.jobs.SqlJobStore). Keyword-only methods."""

    async def get(self, *, job_id: str) -> Job | None: ...

    async def update(self, *, job_id: str, state: JobState | None = None, **fields: Any) -> Job: ...

    async def finish(self, *, job_id: str, outcome: Outcome, detail: str | None = None) -> Job: ...
