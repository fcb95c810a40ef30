"""Ports: what the use cases need from the outside world. Adapters and fakes implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date
from typing import Protocol

from services.models import (
    AccountingInvoice,
    Integration,
    PortalInvoice,
    ProcessedRecord,
    RecordResync,
    RecordType,
    SyncRun,
    TokenSet,
)


class AccountingSystem(Protocol):
    """The accounting package: the source of truth (QuickBooks Online first)."""

    name: str

    async def get_invoice(self, number: str) -> AccountingInvoice | None:
        """The invoice with this document number, or None."""
        ...

    async def get_invoices(self, numbers: Sequence[str]) -> dict[str, AccountingInvoice]:
        """Batched look-up by document number; absent numbers are left out."""
        ...

    def iter_open_invoices(
        self, *, page_size: int = 1000
    ) -> AsyncIterator[list[AccountingInvoice]]:
        """Every invoice with a balance above zero, page by page."""
        ...

    async def aclose(self) -> None: ...


class BillingPortal(Protocol):
    """The billing portal that mirrors the accounting package."""

    async def get_invoice(self, number: str) -> PortalInvoice | None: ...

    async def get_invoices(self, numbers: Sequence[str]) -> dict[str, PortalInvoice]: ...

    def iter_open_invoices(
        self, *, page_size: int = 1000
    ) -> AsyncIterator[list[PortalInvoice]]: ...

    async def list_integrations(self) -> list[Integration]: ...

    async def get_integration(self, integration_id: str) -> Integration: ...

    async def start_sync(self, integration_id: str, *, sync_from: date) -> SyncRun: ...

    async def get_sync_run(self, run_id: str) -> SyncRun: ...

    async def list_sync_runs(self, integration_id: str, *, limit: int = 10) -> list[SyncRun]: ...

    async def list_processed_records(self, run_id: str) -> list[ProcessedRecord]: ...

    async def resync_record(self, record_type: RecordType, record_id: str) -> RecordResync: ...

    async def get_record_resync(self, resync_id: str) -> RecordResync: ...

    async def aclose(self) -> None: ...


class TokenStore(Protocol):
    """Where the accounting package's OAuth tokens live (the database in production).

    The refresh token rotates: the adapter saves the newest one before it uses the new
    access token, and ``refresh_lock`` lets one refresher run at a time.
    """

    async def load(self) -> TokenSet | None: ...

    async def save(self, tokens: TokenSet) -> None: ...

    def refresh_lock(self) -> AbstractAsyncContextManager[None]: ...
