"""The billing portal adapter: the Portal REST API of ``docs/portal-api.yaml``, its
invoices, integrations and syncs, record resyncs and payments. Requests, retries and
errors: ``session``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from services.adapters.hooks import EventHooks, RequestObserver
from services.adapters.portal.listing import read_page
from services.adapters.portal.payments import (
    MAX_LOOKUP,
    InvoicePayments,
    InvoiceWithPayments,
    PaymentLookup,
    PaymentPage,
)
from services.adapters.portal.payments import Payment as PaymentWire
from services.adapters.portal.session import PortalSession, idempotent, logger, segment
from services.adapters.portal.wire import (
    SYSTEM,
    CompanyWire,
    ContactWire,
    Integrations,
    IntegrationWire,
    Invoice,
    InvoicePage,
    Lookup,
    RecordPage,
    RecordResyncWire,
    SyncRuns,
    SyncRunWire,
    parse,
)
from services.errors import NotFoundError, UpstreamError, ValidationFault
from services.models import (
    Integration,
    PortalInvoice,
    PortalPayment,
    PortalRecord,
    ProcessedRecord,
    RecordResync,
    RecordType,
    SyncRun,
)
from services.ports import Listed

MAX_BATCH = 1000
MAX_HISTORY = 100


def _page(response: httpx.Response, body: bytes) -> tuple[list[tuple[str, Listed]], str | None]:
    return read_page(body)


class PortalClient(PortalSession):
    """``BillingPortal`` over the Portal REST API.

    ``base_url`` is the portal's address; ``/api/v1`` is appended unless already there.
    """

    name = "portal"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr,
        transport: httpx.AsyncBaseTransport | None = None,
        event_hooks: EventHooks | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_retry_wait: float = 60.0,
        lookup_concurrency: int = 4,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: RequestObserver | None = None,
        integrations_ttl: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            base_url=base_url,
            api_key=api_key,
            transport=transport,
            event_hooks=event_hooks,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_retry_wait=max_retry_wait,
            sleep=sleep,
            observer=observer,
        )
        self._integrations_ttl = integrations_ttl
        self._monotonic = monotonic
        self._integrations: tuple[float, list[Integration]] | None = None
        """``GET /integrations`` as last read (when, what): it seldom changes, and every
        check asks for it. Forgotten after the TTL, and whenever a full sync starts or is
        seen finished (``last_successful_sync_at`` moves then)."""
        self._embeds_payments = True
        """False once the portal refused ``include=payments`` (contract 1.1)."""
        self._lookup_concurrency = max(1, lookup_concurrency)

    # Invoices.
    async def get_invoice(self, number: str) -> PortalInvoice | None:
        try:
            body = await self._call("GET", f"/invoices/{segment(number)}")
        except NotFoundError:
            return None
        return parse(Invoice, body).domain()

    async def get_invoice_with_payments(
        self, number: str
    ) -> tuple[PortalInvoice | None, list[PortalPayment]]:
        """One request (``include=payments``, contract 1.2); two at once to a portal that
        refuses it (1.1), which is then not asked again."""
        if self._embeds_payments:
            path = f"/invoices/{segment(number)}"
            try:
                body = await self._call("GET", path, params={"include": "payments"})
            except NotFoundError:
                return None, []
            except ValidationFault:
                if await self.get_invoice(number) is None:  # still answers: not the number
                    return None, []
                self._embeds_payments = False
                logger.info("the portal does not embed payments: two requests a check")
            else:
                answer = parse(InvoiceWithPayments, body)
                if answer.payments is not None:
                    return answer.domain(), [p.domain() for p in answer.payments]
                self._embeds_payments = False  # it ignored the parameter
        invoice, payments = await asyncio.gather(
            self.get_invoice(number), self.list_invoice_payments(number)
        )
        return invoice, payments if invoice is not None else []

    async def get_invoices(self, numbers: Sequence[str]) -> dict[str, PortalInvoice]:
        unique = list(dict.fromkeys(numbers))
        batches = [unique[i : i + MAX_BATCH] for i in range(0, len(unique), MAX_BATCH)]
        found: dict[str, PortalInvoice] = {}
        slots = asyncio.Semaphore(self._lookup_concurrency)
        for answer in await asyncio.gather(*(self._lookup(batch, slots) for batch in batches)):
            for invoice in answer.invoices:
                found[invoice.number] = invoice.domain()
        return found

    async def _lookup(self, batch: list[str], slots: asyncio.Semaphore) -> Lookup:
        async with slots:  # a few batches at a time
            body = await self._call(
                "POST", "/invoices/lookup", json={"numbers": batch}, read_only=True
            )
        return parse(Lookup, body)

    async def iter_open_invoices(
        self, *, page_size: int = 1000
    ) -> AsyncIterator[list[tuple[str, Listed]]]:
        """Pages in number order, as (number, listed) pairs: only the listing's fields are
        decoded (``listing.read_page``). The pages follow a cursor, one after the other: the
        next one is asked for as soon as the current one is decoded, before it is handed on."""
        params: dict[str, str | int] = {"status": "open", "limit": max(1, min(page_size, 1000))}
        seen: set[str] = set()
        fetch = asyncio.ensure_future(self._request("GET", "/invoices", params=params, read=_page))
        try:
            while True:
                page, cursor = await fetch
                if cursor is not None:
                    if cursor in seen:  # a portal paging in circles must not hold us
                        raise UpstreamError(
                            "the portal's invoice pages repeat a cursor", system=SYSTEM
                        )
                    seen.add(cursor)
                    following = {**params, "cursor": cursor}
                    fetch = asyncio.ensure_future(
                        self._request("GET", "/invoices", params=following, read=_page)
                    )
                if page:
                    yield page
                if cursor is None:
                    return
        finally:
            _forget(fetch)  # when the reader stops early

    async def list_changed_invoices(self, *, since: datetime) -> list[PortalInvoice]:
        """Every invoice updated at or after ``since``, whatever its status (contract 1.2:
        ``updated_since``; a 1.1 portal answers 422, a ValidationFault)."""
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        params: dict[str, str | int] = {"updated_since": stamp, "limit": 1000}
        found: list[PortalInvoice] = []
        seen: set[str] = set()
        while True:
            page = parse(InvoicePage, await self._call("GET", "/invoices", params=params))
            found += [i.domain() for i in page.invoices]
            if page.next_cursor is None or page.next_cursor in seen:
                return found
            seen.add(page.next_cursor)
            params["cursor"] = page.next_cursor

    # Integrations and syncs.
    async def list_integrations(self) -> list[Integration]:
        now = self._monotonic()
        if self._integrations is not None and now - self._integrations[0] < self._integrations_ttl:
            return list(self._integrations[1])
        body = await self._call("GET", "/integrations")
        found = [i.domain() for i in parse(Integrations, body).integrations]
        self._integrations = (now, found)
        return list(found)

    async def get_record(self, record_type: RecordType, record_id: str) -> PortalRecord | None:
        """A company or a contact (contract 1.2); None when the portal has none."""
        path = "/companies" if record_type is RecordType.COMPANY else "/contacts"
        try:
            body = await self._call("GET", f"{path}/{segment(record_id)}")
        except NotFoundError:
            return None
        if record_type is RecordType.COMPANY:
            return parse(CompanyWire, body).domain()
        return parse(ContactWire, body).domain()

    async def get_integration(self, integration_id: str) -> Integration:
        body = await self._call("GET", f"/integrations/{segment(integration_id)}")
        return parse(IntegrationWire, body).domain()

    async def start_sync(
        self, integration_id: str, *, sync_from: date, idempotency_key: str | None = None
    ) -> SyncRun:
        """``idempotency_key``: the same key always gets the first answer, never a second run."""
        self._integrations = None
        body = await self._call(
            "POST",
            f"/integrations/{segment(integration_id)}/syncs",
            json={"sync_from": sync_from.isoformat()},
            headers=idempotent(idempotency_key),
        )
        return parse(SyncRunWire, body).domain()

    async def get_sync_run(self, run_id: str) -> SyncRun:
        body = await self._call("GET", f"/sync-runs/{segment(run_id)}")
        run = parse(SyncRunWire, body).domain()
        if run.status.finished:
            self._integrations = None  # its last successful sync may have moved
        return run

    async def list_sync_runs(self, integration_id: str, *, limit: int = 10) -> list[SyncRun]:
        body = await self._call(
            "GET",
            f"/integrations/{segment(integration_id)}/syncs",
            params={"limit": max(1, min(limit, MAX_HISTORY))},
        )
        return [run.domain() for run in parse(SyncRuns, body).sync_runs]

    async def list_processed_records(self, run_id: str) -> list[ProcessedRecord]:
        records: list[ProcessedRecord] = []
        params: dict[str, str | int] = {"limit": 1000}
        while True:
            body = await self._call("GET", f"/sync-runs/{segment(run_id)}/records", params=params)
            page = parse(RecordPage, body)
            records.extend(record.domain() for record in page.records)
            if page.next_cursor is None:
                return records
            params["cursor"] = page.next_cursor

    # Record resyncs.
    async def resync_record(
        self, record_type: RecordType, record_id: str, *, idempotency_key: str | None = None
    ) -> RecordResync:
        """``idempotency_key``: the same key always gets the first answer, never a second run."""
        body = await self._call(
            "POST",
            "/record-resyncs",
            json={"record_type": RecordType(record_type).value, "record_id": record_id},
            headers=idempotent(idempotency_key),
        )
        return parse(RecordResyncWire, body).domain()

    async def get_record_resync(self, resync_id: str) -> RecordResync:
        body = await self._call("GET", f"/record-resyncs/{segment(resync_id)}")
        return parse(RecordResyncWire, body).domain()

    # Payments made in the portal.
    async def list_invoice_payments(self, number: str) -> list[PortalPayment]:
        try:
            body = await self._call("GET", f"/invoices/{segment(number)}/payments")
        except NotFoundError:
            return []
        return [p.domain() for p in parse(InvoicePayments, body).payments]

    async def get_invoice_payments(self, numbers: Sequence[str]) -> dict[str, list[PortalPayment]]:
        """Batched; invoices the portal ``deferred`` (their payments did not fit in one
        answer) are asked for again, alone when a whole batch was deferred."""
        pending = list(dict.fromkeys(numbers))
        found: dict[str, list[PortalPayment]] = {}
        size = MAX_LOOKUP
        while pending:
            batch, pending = pending[:size], pending[size:]
            body = await self._call(
                "POST", "/payments/lookup", json={"numbers": batch}, read_only=True
            )
            answer = parse(PaymentLookup, body)
            deferred = [n for n in answer.deferred if n in batch]
            if len(batch) == 1 and deferred:
                raise UpstreamError(
                    "the portal deferred the payments of a single invoice", system=SYSTEM
                )
            for number in batch:
                if number not in answer.missing and number not in deferred:
                    found.setdefault(number, [])
            for payment in answer.payments:
                if payment.invoice_number not in deferred:
                    found.setdefault(payment.invoice_number, []).append(payment.domain())
            pending = deferred + pending
            size = 1 if deferred and len(deferred) == len(batch) else MAX_LOOKUP
        return found

    async def list_failed_payments(self, *, since: datetime) -> list[PortalPayment]:
        """Payments whose transfer to the accounting package failed at or after ``since``,
        in the order the transfers were tried (every page)."""
        params: dict[str, str | int] = {
            "transfer_status": "failed",
            "transferred_since": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "limit": 1000,
        }
        failed: list[PortalPayment] = []
        seen: set[str] = set()
        while True:
            page = parse(PaymentPage, await self._call("GET", "/payments", params=params))
            failed += [p.domain() for p in page.payments]
            if page.next_cursor is None:
                return failed
            if page.next_cursor in seen:  # a portal paging in circles must not hold us
                raise UpstreamError("the portal's payment pages repeat a cursor", system=SYSTEM)
            seen.add(page.next_cursor)
            params["cursor"] = page.next_cursor

    async def dismiss_payment(
        self, payment_id: str, *, idempotency_key: str | None = None
    ) -> PortalPayment:
        """``POST /payments/{id}/dismiss`` (contract 1.2): the failed transfer resolved."""
        body = await self._call(
            "POST",
            f"/payments/{segment(payment_id)}/dismiss",
            json={},
            headers=idempotent(idempotency_key),
        )
        return parse(PaymentWire, body).domain()


def _forget(fetch: asyncio.Future[Any]) -> None:
    """A page no longer wanted: cancelled, and its error, if any, is not news."""
    fetch.cancel()
    fetch.add_done_callback(lambda f: None if f.cancelled() else f.exception())
