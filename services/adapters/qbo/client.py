"""QuickBooks Online (Accounting API v3) as an ``AccountingSystem``.

Reads invoices through the query endpoint, within Intuit's limits (10 in flight and 500 a
minute per company), refreshing OAuth2 tokens as needed and retrying what is worth it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime
from functools import partial
from types import TracebackType
from typing import Any
from urllib.parse import quote as url_quote

import httpx
from pydantic import SecretStr

from services.adapters import qbo_evidence
from services.adapters.hooks import NoObserver, RequestObserver, outcome_of
from services.adapters.json_slices import PARSE_SLICE
from services.adapters.limits import RateLimiter
from services.adapters.qbo_auth import QboAuth
from services.adapters.qbo_decoders import InProcessDecoder, ListingDecoder
from services.adapters.qbo_faults import (
    SYSTEM,
    error_for,
    fault_from_json,
    fault_from_response,
    parse_json,
    retry_after,
)
from services.adapters.qbo_listing import Listing
from services.adapters.qbo_listing import amount as _amount
from services.adapters.qbo_listing import missing as _missing
from services.adapters.qbo_listing import opt_str as _opt_str
from services.adapters.qbo_listing import utc_datetime as _datetime
from services.errors import (
    AuthenticationError,
    NotFoundError,
    ReconnectRequired,
    ThrottledError,
    TransientError,
    UpstreamError,
)
from services.models import (
    AccountingInvoice,
    AccountingPayment,
    CreditMemo,
    InvoiceRecord,
    utcnow,
)
from services.ports import Listed, TokenStore

log = logging.getLogger("services.adapters.qbo")
Decode = Callable[[bytes, str], Awaitable[Any]]
"""A listing page's raw answer (content, encoding) to its body."""

MAX_PAGE = 1000
"""Intuit's MAXRESULTS ceiling."""
LOOKUP_CHUNK = 100
"""Document numbers per ``DocNumber IN (...)`` query: keeps statements short."""
MAX_DOC_NUMBER = 21
THROTTLE_WAIT = 60.0
"""Wait after a 429 without Retry-After (Intuit's window is a minute)."""


def quote(value: str) -> str:
    """A query literal: single quotes, with ``\\`` and ``'`` escaped by a backslash."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class QboClient:
    """The QuickBooks Online adapter; one per company (realm). Close it with ``aclose``."""

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
        decoder: ListingDecoder | None = None,
    ) -> None:
        self._realm_id = realm_id
        self._observer = observer or NoObserver()
        self._minor_version = str(minor_version)
        self._max_retries = max_retries
        self._retry_backoff = retry_backoff
        self._max_retry_wait = max_retry_wait
        self._lookup_batch = max(1, min(lookup_batch, MAX_PAGE))
        self._list_concurrency = max(1, list_concurrency)
        self._sleep = sleep
        self.decoder = decoder or InProcessDecoder()
        """Decodes the open-invoice listing's pages (here, or in a worker process)."""
        self._decoding = asyncio.Lock()
        """One long answer decoded at a time: the slices of several would all run before
        the event loop next looks at the sockets, keeping the portal's answers waiting."""
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "invoice-resync-bot"},
        )
        self.limiter = limiter or RateLimiter(
            max_concurrency=max_concurrency, max_per_window=max_per_minute
        )
        self.auth = QboAuth(
            http=self._http,
            token_url=token_url,
            client_id=client_id,
            client_secret=client_secret,
            store=token_store,
            clock=clock,
            observer=self._observer,
        )

    async def __aenter__(self) -> QboClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        try:
            await self.decoder.aclose()
        finally:
            await self._http.aclose()

    # -- AccountingSystem ---------------------------------------------------------------
    async def get_invoice(self, number: str) -> AccountingInvoice | None:
        if not number or len(number) > MAX_DOC_NUMBER:
            return None  # QBO cannot hold it: no need to ask
        rows = await self.query_invoices(f"SELECT * FROM Invoice WHERE DocNumber = {quote(number)}")
        return _pick(rows)

    async def get_invoices(self, numbers: Sequence[str]) -> dict[str, AccountingInvoice]:
        wanted = list(dict.fromkeys(n for n in numbers if n and len(n) <= MAX_DOC_NUMBER))
        size = self._lookup_batch
        chunks = [wanted[i : i + size] for i in range(0, len(wanted), size)]
        pages = await asyncio.gather(*(self._lookup(chunk) for chunk in chunks))
        found: dict[str, list[AccountingInvoice]] = {}
        for page in pages:
            for invoice in page:
                found.setdefault(invoice.number, []).append(invoice)
        return {n: inv for n, rows in found.items() if (inv := _pick(rows)) is not None}

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
        fields are read (``Listing``, decoded by ``decoder``): no AccountingInvoice is built."""
        page_size = max(1, min(page_size, MAX_PAGE))
        start = 1
        listing = Listing()
        if self._list_concurrency > 1:
            total = await self.count_open_invoices()
            await self.decoder.prepare(min(total, page_size))  # the longest page's invoices
            planned = -(-total // page_size)
            start, last_full = 1 + planned * page_size, False
            pages = self._pages_at_once(listing, planned, page_size)
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
            page, returned = await self._open_page(listing, start, page_size)
            if page:
                yield page
            if returned < page_size:  # what QBO sent, skipped rows included
                return
            start += page_size

    async def _open_page(
        self, listing: Listing, start: int, size: int
    ) -> tuple[list[tuple[str, Listed]], int]:
        """One page of open invoices as (number, listed) pairs, and how many rows QBO sent."""
        answer = await self._query(
            "SELECT * FROM Invoice WHERE Balance > '0' ORDERBY Id "
            f"STARTPOSITION {start} MAXRESULTS {size}",
            listing=listing,
        )
        rows = answer.get("Invoice", [])
        if not isinstance(rows, list):
            raise UpstreamError("the query answer's Invoice is not a list", system=SYSTEM)
        return [row for row in rows if row is not None], len(rows)

    async def _pages_at_once(
        self, listing: Listing, planned: int, size: int
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
                    fetch = self._open_page(listing, 1 + index * size, size)
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
            body = await self._request("GET", f"/invoice/{url_quote(invoice_id, safe='')}")
        except NotFoundError:
            return None
        raw = body.get("Invoice")
        return _parse(raw) if isinstance(raw, dict) else None

    async def count_open_invoices(self) -> int:
        body = await self.query("SELECT count(*) FROM Invoice WHERE Balance > '0'")
        return int(body.get("totalCount", 0))

    # -- evidence: why an invoice differs (services.evidence) ---------------------------
    async def find_invoice_records(self, numbers: Sequence[str]) -> list[InvoiceRecord]:
        wanted = [n for n in numbers if n and len(n) <= MAX_DOC_NUMBER]
        return await qbo_evidence.find_invoice_records(self.query, wanted)

    async def get_invoice_records(self, ids: Sequence[str]) -> list[InvoiceRecord]:
        return await qbo_evidence.get_invoice_records(self.query, ids)

    async def list_payments_for(self, customer_ids: Sequence[str]) -> list[AccountingPayment]:
        return await qbo_evidence.list_payments_for(self.query, customer_ids)

    async def list_credit_memos_for(self, customer_ids: Sequence[str]) -> list[CreditMemo]:
        return await qbo_evidence.list_credit_memos_for(self.query, customer_ids)

    # -- the query endpoint -----------------------------------------------------------
    async def query(self, statement: str) -> dict[str, Any]:
        """Run one statement; returns the ``QueryResponse`` object (possibly empty)."""
        return await self._query(statement)

    async def _query(self, statement: str, *, listing: Listing | None = None) -> dict[str, Any]:
        body = await self._request(
            "POST",
            "/query",
            content=statement.encode(),
            headers={"Content-Type": "application/text"},
            listing=listing,
        )
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
        for index, raw in enumerate(rows):
            if index % PARSE_SLICE == PARSE_SLICE - 1:
                await asyncio.sleep(0)  # a long page: let other answers in meanwhile
            if isinstance(raw, dict) and raw.get("DocNumber"):
                invoices.append(_parse(raw))
            else:
                log.info(
                    "QuickBooks Online invoice without a DocNumber skipped (Id=%s)",
                    raw.get("Id") if isinstance(raw, dict) else None,
                )
        return invoices, len(rows)

    # -- one request, with refresh, limits and retries --------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        listing: Listing | None = None,
    ) -> dict[str, Any]:
        """The JSON body; with ``listing``, a listing page's (its invoices read by it) that
        ``decoder`` decodes."""
        url = f"/v3/company/{self._realm_id}{path}"
        params = {"minorversion": self._minor_version}
        attempt = 0
        refreshed = False
        rejected: str | None = None  # a token the API refused: refresh it first
        while True:
            token: str | None = None
            try:
                if rejected is not None:
                    token = await self.auth.refresh(rejected=rejected)
                    rejected = None
                else:
                    token = await self.auth.access_token()
                async with self.limiter.slot():
                    response = await self._http.request(
                        method,
                        url,
                        params=params,
                        content=content,
                        headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                    )
                try:
                    return await self._observed(response, listing=listing)
                finally:  # httpx's response and its stream refer to each other: unlink them
                    response.stream = httpx.ByteStream(b"")  # so the body is freed now
            except ReconnectRequired:
                raise  # logged once where it was learnt (QboAuth), not once per request
            except AuthenticationError as exc:
                if refreshed or token is None:
                    _log_failure(method, path, exc, final=True)
                    raise
                refreshed = True
                rejected = token
                self._observer.retry("qbo", outcome_of(exc))
                log.info(
                    "QuickBooks Online refused the access token (intuit_tid=%s): refreshing",
                    exc.request_id,
                )
                continue
            except httpx.TimeoutException as exc:
                error: UpstreamError = TransientError(
                    f"no answer within the timeout ({type(exc).__name__})", system=SYSTEM
                )
                self._observer.request("qbo", outcome_of(error))
            except httpx.TransportError as exc:
                error = TransientError(f"connection failed ({type(exc).__name__})", system=SYSTEM)
                self._observer.request("qbo", outcome_of(error))
            except (ThrottledError, TransientError) as exc:
                error = exc
            except UpstreamError as exc:  # not worth a retry
                _log_failure(method, path, exc, final=True)
                raise
            if attempt >= self._max_retries:
                _log_failure(method, path, error, final=True)
                raise error
            delay = self._delay(error, attempt)
            _log_failure(method, path, error, final=False, delay=delay)
            self._observer.retry("qbo", outcome_of(error))
            attempt += 1
            await self._sleep(delay)

    async def _observed(
        self, response: httpx.Response, *, listing: Listing | None
    ) -> dict[str, Any]:
        try:
            if listing is None:
                body = await _body_or_raise(response, None)
            else:
                async with self._decoding:
                    body = await _body_or_raise(
                        response, partial(self.decoder.decode, listing=listing)
                    )
        except UpstreamError as exc:
            self._observer.request("qbo", outcome_of(exc))
            raise
        self._observer.request("qbo", outcome_of(None))
        return body

    def _delay(self, error: UpstreamError, attempt: int) -> float:
        if isinstance(error, ThrottledError):
            wait = error.retry_after if error.retry_after is not None else THROTTLE_WAIT
        else:
            wait = self._retry_backoff * 2**attempt * (0.5 + random.random() / 2)
        return max(0.0, min(wait, self._max_retry_wait))


async def _body_or_raise(response: httpx.Response, decode: Decode | None) -> dict[str, Any]:
    """The JSON body (``decode``: a listing page's decoder), or the error it stands for."""
    request_id = response.headers.get("intuit_tid")
    if response.is_success:
        try:
            if decode is None:
                body = parse_json(response.text)
            else:
                body = await decode(response.content, response.encoding or "utf-8")
        except ValueError:
            raise TransientError(
                "the answer was not JSON",
                system=SYSTEM,
                status=response.status_code,
                request_id=request_id,
            ) from None
        fault = fault_from_json(body)
        if fault is not None:  # a fault inside a 200
            raise error_for(response.status_code, fault, request_id=request_id)
        if not isinstance(body, dict):
            raise UpstreamError("unexpected answer", system=SYSTEM, request_id=request_id)
        return body
    raise error_for(
        response.status_code,
        fault_from_response(response),
        request_id=request_id,
        wait=retry_after(response),
    )


def _log_failure(
    method: str, path: str, error: UpstreamError, *, final: bool, delay: float = 0.0
) -> None:
    what = "failed" if final else f"failed, retrying in {delay:.2f}s"
    level = logging.WARNING if not final or isinstance(error, NotFoundError) else logging.ERROR
    log.log(
        level,
        "QuickBooks Online %s %s %s: %s (status=%s code=%s intuit_tid=%s)",
        method,
        path.split("/")[1] if "/" in path else path,
        what,
        error.message,
        error.status,
        error.code,
        error.request_id,
    )


def _pick(rows: list[AccountingInvoice]) -> AccountingInvoice | None:
    """DocNumbers need not be unique in QBO: take the most recently changed."""
    if len(rows) > 1:
        log.warning(
            "QuickBooks Online has %d invoices numbered %s: using the newest",
            len(rows),
            rows[0].number,
        )
    return max(rows, key=lambda inv: inv.last_updated, default=None)


# -- Intuit documents to domain models ------------------------------------------------
def _parse(raw: Mapping[str, Any]) -> AccountingInvoice:
    try:
        return to_invoice(raw)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise UpstreamError(
            f"malformed invoice Id={raw.get('Id')!s:.30}: {type(exc).__name__}", system=SYSTEM
        ) from exc


def to_invoice(raw: Mapping[str, Any]) -> AccountingInvoice:
    """An Intuit Invoice document (extra fields ignored) as an AccountingInvoice."""
    meta = raw.get("MetaData") or {}
    customer = raw.get("CustomerRef") or {}
    currency = raw.get("CurrencyRef") or {}
    return AccountingInvoice(
        id=str(raw["Id"]),
        number=str(raw["DocNumber"]),
        customer_id=_opt_str(customer.get("value")),
        customer_name=str(customer.get("name") or ""),
        total=_amount(raw.get("TotalAmt", 0)),
        balance=_amount(raw.get("Balance", 0)),
        currency=_opt_str(currency.get("value")),
        txn_date=_date(raw.get("TxnDate")),
        due_date=_date(raw.get("DueDate")),
        created_at=_datetime(meta.get("CreateTime")),
        last_updated=_datetime(meta.get("LastUpdatedTime")) or _missing("LastUpdatedTime"),
    )


def _date(value: object) -> date | None:
    return date.fromisoformat(value[:10]) if isinstance(value, str) and value else None
