"""QuickBooks Online (Accounting API v3) as an ``AccountingSystem``.

Reads invoices through the query endpoint, and writes the payments the fixes apply.
Requests, Intuit's limits, OAuth2 tokens and retries: ``session``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote as url_quote

import httpx
from pydantic import SecretStr

from services.adapters.hooks import EventHooks, RequestObserver
from services.adapters.limits import RateLimiter
from services.adapters.qbo import batch, evidence, writes
from services.adapters.qbo.answers import json_body, listing_page, query_parts, tagged_json
from services.adapters.qbo.documents import parse_invoice, pick_newest
from services.adapters.qbo.evidence import quote
from services.adapters.qbo.faults import SYSTEM
from services.adapters.qbo.session import QboSession, log
from services.errors import NotFoundError, UpstreamError
from services.models import (
    AccountingInvoice,
    AccountingPayment,
    AccountingReading,
    CreditMemo,
    InvoiceRecord,
    WriteResult,
    utcnow,
)
from services.ports import Listed, TokenStore

MAX_PAGE = 1000
"""Intuit's MAXRESULTS ceiling."""
LOOKUP_CHUNK = 100
"""Document numbers per ``DocNumber IN (...)`` query: keeps statements short."""
MAX_DOC_NUMBER = 21


def _at(moment: datetime) -> str:
    return quote(moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


class QboClient(QboSession):
    """The QuickBooks Online adapter; one per company (realm). Close it with ``aclose``.
    Requests, limits, tokens and retries: ``session``."""

    name = "QuickBooks Online"

    def __init__(
        self,
        *,
        base_url: str,
        token_url: str,
        realm_id: str,
        client_id: str,
        client_secret: SecretStr,
        token_store: TokenStore,
        transport: httpx.AsyncBaseTransport | None = None,
        event_hooks: EventHooks | None = None,
        timeout: float = 30.0,
        minor_version: int = 75,
        max_concurrency: int = 10,
        max_per_minute: int = 500,
        max_retries: int = 4,
        retry_backoff: float = 0.5,
        max_retry_wait: float = 60.0,
        lookup_batch: int = LOOKUP_CHUNK,
        list_concurrency: int = 1,
        limiter: RateLimiter | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: RequestObserver | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            token_url=token_url,
            realm_id=realm_id,
            client_id=client_id,
            client_secret=client_secret,
            token_store=token_store,
            transport=transport,
            event_hooks=event_hooks,
            timeout=timeout,
            minor_version=minor_version,
            max_concurrency=max_concurrency,
            max_per_minute=max_per_minute,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            max_retry_wait=max_retry_wait,
            limiter=limiter,
            clock=clock,
            sleep=sleep,
            observer=observer,
        )
        self.hints = batch.CustomerHints()
        self.batch_budget = batch.BatchBudget()
        self._lookup_batch = max(1, min(lookup_batch, MAX_PAGE))
        self._list_concurrency = max(1, list_concurrency)

    # -- AccountingSystem ---------------------------------------------------------------
    async def get_invoice(self, number: str) -> AccountingInvoice | None:
        if not number or len(number) > MAX_DOC_NUMBER:
            return None  # QBO cannot hold it: no need to ask
        rows = await self.query_invoices(f"SELECT * FROM Invoice WHERE DocNumber = {quote(number)}")
        found = pick_newest(rows)
        self.hints.learn(number, found.customer_id if found else None)
        return found

    async def read_invoice(
        self, number: str, *, customer_id: str | None = None
    ) -> AccountingReading:
        """The invoice with its evidence in one batch request (``batch.read_invoice``) when
        the customer is known (``customer_id``, else the one this adapter last saw on the
        invoice); otherwise, or past the batch budget, the invoice alone in one query."""
        if not number or len(number) > MAX_DOC_NUMBER:
            return AccountingReading()
        customer = customer_id or self.hints.get(number)
        if customer and self.batch_budget.take():
            return await batch.read_invoice(self._batch, number, customer, self.hints)
        statement = f"SELECT * FROM Invoice WHERE DocNumber = {quote(number)}"
        rows = (await self.query(statement)).get("Invoice", [])
        return batch.invoice_only(number, rows if isinstance(rows, list) else [], self.hints)

    async def _batch(self, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        return await self._request("POST", "/batch", read=json_body, content=body, headers=headers)

    async def get_invoices(self, numbers: Sequence[str]) -> dict[str, AccountingInvoice]:
        wanted = list(dict.fromkeys(n for n in numbers if n and len(n) <= MAX_DOC_NUMBER))
        size = self._lookup_batch
        chunks = [wanted[i : i + size] for i in range(0, len(wanted), size)]
        pages = await asyncio.gather(*(self._lookup(chunk) for chunk in chunks))
        found: dict[str, list[AccountingInvoice]] = {}
        for page in pages:
            for invoice in page:
                found.setdefault(invoice.number, []).append(invoice)
        return {n: inv for n, rows in found.items() if (inv := pick_newest(rows)) is not None}

    async def _lookup(self, numbers: list[str]) -> list[AccountingInvoice]:
        values = ", ".join(quote(n) for n in numbers)
        statement = f"SELECT * FROM Invoice WHERE DocNumber IN ({values})"
        found, returned = await self._invoice_page(f"{statement} MAXRESULTS {MAX_PAGE}")
        start = 1
        while returned == MAX_PAGE:  # a full answer may hide more (DocNumbers repeat)
            start += MAX_PAGE
            page, returned = await self._invoice_page(
                f"{statement} STARTPOSITION {start} MAXRESULTS {MAX_PAGE}"
            )
            found.extend(page)
        return found

    async def iter_open_invoices(
        self, *, page_size: int = MAX_PAGE
    ) -> AsyncIterator[list[tuple[str, Listed]]]:
        """Pages in Id order; with ``list_concurrency`` > 1, a count(*) first, then that many
        pages at a time (within the limiter), yielded as they arrive. Only the listing's
        fields are decoded (``listing.read_page``): no AccountingInvoice is built."""
        page_size = max(1, min(page_size, MAX_PAGE))
        start = 1
        if self._list_concurrency > 1:
            total = await self.count_open_invoices()
            planned = -(-total // page_size)
            start, last_full = 1 + planned * page_size, False
            pages = self._pages_at_once(planned, page_size)
            try:
                async for page, is_last_and_full in pages:
                    last_full = last_full or is_last_and_full
                    if page:
                        yield page
            finally:
                await pages.aclose()
            if not last_full:  # the last planned page was short: nothing was added since
                return
        while True:
            page, returned = await self._open_page(start, page_size)
            if page:
                yield page
            if returned < page_size:  # what QBO sent, skipped rows included
                return
            start += page_size

    async def _open_page(self, start: int, size: int) -> tuple[list[tuple[str, Listed]], int]:
        """One page of open invoices as (number, listed) pairs, and how many rows QBO sent."""
        statement = (
            "SELECT * FROM Invoice WHERE Balance > '0' ORDERBY Id "
            f"STARTPOSITION {start} MAXRESULTS {size}"
        )
        page = await self._request("POST", "/query", read=listing_page, **query_parts(statement))
        return page.pairs, page.returned

    async def _pages_at_once(
        self, planned: int, size: int
    ) -> AsyncGenerator[tuple[list[tuple[str, Listed]], bool], None]:
        """Pages 1..planned, ``list_concurrency`` in flight; (page, is the last one full)."""
        waiting = iter(range(planned))
        running: dict[asyncio.Task[tuple[list[tuple[str, Listed]], int]], int] = {}
        try:
            while True:
                while len(running) < self._list_concurrency:
                    index = next(waiting, None)
                    if index is None:
                        break
                    fetch = self._open_page(1 + index * size, size)
                    running[asyncio.create_task(fetch)] = index
                if not running:
                    return
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    index = running.pop(task)
                    page, returned = task.result()
                    yield page, index == planned - 1 and returned == size
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def get_invoice_by_id(self, invoice_id: str) -> AccountingInvoice | None:
        """The invoice with this QBO Id, or None (fault 610)."""
        try:
            path = f"/invoice/{url_quote(invoice_id, safe='')}"
            body = await self._request("GET", path, read=json_body)
        except NotFoundError:
            return None
        raw = body.get("Invoice")
        return parse_invoice(raw) if isinstance(raw, dict) else None

    async def list_changed_invoices(
        self, *, since: datetime, limit: int = 10_000
    ) -> list[AccountingInvoice]:
        """Invoices changed at or after ``since`` (what a full sync from then re-reads),
        in pages of 1000, at most ``limit``."""
        statement = (
            f"SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= {_at(since)} ORDERBY Id"
        )
        found: list[AccountingInvoice] = []
        start = 1
        while len(found) < limit:
            page, returned = await self._invoice_page(
                f"{statement} STARTPOSITION {start} MAXRESULTS {MAX_PAGE}"
            )
            found.extend(page)
            if returned < MAX_PAGE:
                break
            start += MAX_PAGE
        return found[:limit]

    async def count_changed_invoices(self, *, since: datetime) -> int:
        body = await self.query(
            f"SELECT count(*) FROM Invoice WHERE MetaData.LastUpdatedTime >= {_at(since)}"
        )
        return int(body.get("totalCount", 0))

    async def count_open_invoices(self) -> int:
        body = await self.query("SELECT count(*) FROM Invoice WHERE Balance > '0'")
        return int(body.get("totalCount", 0))

    # -- evidence: why an invoice differs (services.evidence) ---------------------------
    async def find_invoice_records(self, numbers: Sequence[str]) -> list[InvoiceRecord]:
        wanted = [n for n in numbers if n and len(n) <= MAX_DOC_NUMBER]
        return await evidence.find_invoice_records(self.query, wanted)

    async def get_invoice_records(self, ids: Sequence[str]) -> list[InvoiceRecord]:
        records = await evidence.get_invoice_records(self.query, ids)
        for record in records:  # the watch reads these before it re-checks them
            self.hints.learn(record.number, record.customer_id)
        return records

    async def list_payments_for(self, customer_ids: Sequence[str]) -> list[AccountingPayment]:
        return await evidence.list_payments_for(self.query, customer_ids)

    async def list_credit_memos_for(self, customer_ids: Sequence[str]) -> list[CreditMemo]:
        return await evidence.list_credit_memos_for(self.query, customer_ids)

    # -- writes (AccountingWriter): only services.fixes calls these -------------------
    async def apply_payment(
        self, payment: AccountingPayment, *, invoice_id: str, amount: Decimal, request_id: str
    ) -> WriteResult:
        body = writes.apply_payment_body(payment, invoice_id=invoice_id, amount=amount)
        return await self._write(body, request_id=request_id, update=True)

    async def apply_credit_memo(
        self, memo: CreditMemo, *, invoice_id: str, amount: Decimal, request_id: str
    ) -> WriteResult:
        body = writes.credit_application_body(memo, invoice_id=invoice_id, amount=amount)
        return await self._write(body, request_id=request_id, update=False)

    async def _write(self, body: dict[str, Any], *, request_id: str, update: bool) -> WriteResult:
        params = {"requestid": request_id} | ({"operation": "update"} if update else {})
        answer, tid = await self._request(
            "POST",
            "/payment",
            read=tagged_json,
            content=writes.encode(body),
            headers={"Content-Type": "application/json"},
            params=params,
        )
        return writes.result(answer, request_id=request_id, intuit_tid=tid)

    # -- the query endpoint -----------------------------------------------------------
    async def query(self, statement: str) -> dict[str, Any]:
        """Run one statement; returns the ``QueryResponse`` object (possibly empty)."""
        return await self._query(statement)

    async def _query(self, statement: str) -> dict[str, Any]:
        body = await self._request("POST", "/query", read=json_body, **query_parts(statement))
        response = body.get("QueryResponse")
        return response if isinstance(response, dict) else {}

    async def query_invoices(self, statement: str) -> list[AccountingInvoice]:
        """The invoices a ``SELECT * FROM Invoice ...`` statement returns."""
        return (await self._invoice_page(statement))[0]

    async def _invoice_page(self, statement: str) -> tuple[list[AccountingInvoice], int]:
        """The parsed invoices, and how many rows QBO returned (skipped ones included)."""
        rows = (await self.query(statement)).get("Invoice", [])
        if not isinstance(rows, list):
            raise UpstreamError("the query answer's Invoice is not a list", system=SYSTEM)
        invoices = []
        for raw in rows:
            if isinstance(raw, dict) and raw.get("DocNumber"):
                invoices.append(parse_invoice(raw))
            else:
                log.info(
                    "QuickBooks Online invoice without a DocNumber skipped (Id=%s)",
                    raw.get("Id") if isinstance(raw, dict) else None,
                )
        return invoices, len(rows)
