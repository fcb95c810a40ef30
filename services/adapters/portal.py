"""The billing portal adapter: the Portal REST API of ``docs/portal-api.yaml`` over httpx.

Reads are retried on 429, 5xx, timeouts and dropped connections (bounded, with backoff,
honouring ``Retry-After``). Writes (start a sync, resync a record) are retried only when
the portal cannot have acted on them: 429, 503, or a connection never made. The API key
travels in ``X-API-Key`` and is never logged or put in an error message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, ValidationError

from services.adapters.hooks import NoObserver, RequestObserver, outcome_of
from services.adapters.on_the_wire import cursor_at_end, sent_signal, until_sent
from services.adapters.portal_errors import SyncAlreadyRunning
from services.adapters.portal_payments import (
    MAX_LOOKUP,
    InvoicePayments,
    PaymentLookup,
    PaymentPage,
    parse,
)
from services.errors import (
    AuthenticationError,
    NotFoundError,
    ThrottledError,
    TransientError,
    UpstreamError,
    ValidationFault,
)
from services.models import (
    Integration,
    IntegrationKind,
    PortalInvoice,
    PortalPayment,
    ProcessedRecord,
    RecordResync,
    RecordType,
    SyncRun,
    SyncStatus,
    UtcDateTime,
    money,
)
from services.ports import Listed

logger = logging.getLogger(__name__)

SYSTEM = "portal"
API_PREFIX = "/api/v1"
MAX_BATCH = 1000
MAX_HISTORY = 100


def _money(value: object) -> Decimal:
    if not isinstance(value, str):
        raise ValueError("money must be a decimal string")
    return money(value)


Money = Annotated[Decimal, BeforeValidator(_money)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Customer(_Wire):
    id: str | None
    name: str


class _Invoice(_Wire):
    number: str
    external_id: str | None
    customer: _Customer
    total: Money
    balance: Money
    currency: str | None
    status: Literal["open", "paid", "void"]
    integration_id: str
    last_synced_at: UtcDateTime | None

    def domain(self) -> PortalInvoice:
        return PortalInvoice(
            number=self.number,
            external_id=self.external_id,
            customer_id=self.customer.id,
            customer_name=self.customer.name,
            total=self.total,
            balance=self.balance,
            currency=self.currency,
            status=self.status,
            integration_id=self.integration_id,
            last_synced_at=self.last_synced_at,
        )


def _listed_page(
    body: Any, strings: dict[str | None, str | None], times: dict[str, datetime]
) -> tuple[list[tuple[str, Listed]], str | None]:
    """A page of open invoices as (number, listed) pairs, and its next cursor. Only the
    listing's fields are read and checked (``_Invoice`` would build them all); equal names,
    currencies and times become one shared object (``strings``, ``times``)."""
    try:
        invoices, cursor = body["invoices"], body["next_cursor"]
        if not isinstance(invoices, list) or not (cursor is None or isinstance(cursor, str)):
            raise TypeError("invoices must be a list, next_cursor a string or null")
        page: list[tuple[str, Listed]] = []
        for raw in invoices:
            number, name, currency = raw["number"], raw["customer"]["name"], raw["currency"]
            if not (isinstance(number, str) and isinstance(name, str)):
                raise TypeError("number and customer name must be strings")
            if currency is not None and not isinstance(currency, str):
                raise TypeError("currency must be a string or null")
            synced = raw["last_synced_at"]
            changed = None if synced is None else times.get(synced)
            if changed is None and synced is not None:
                changed = times[synced] = _utc(synced)
            balance, share = _money(raw["balance"]), strings.setdefault
            entry = (balance, changed, share(name, name) or "", share(currency, currency))
            page.append((number, entry))
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise UpstreamError(
            f"The portal answered in an unexpected shape ({type(exc).__name__}: {exc})",
            system=SYSTEM,
        ) from None
    if len(times) > 10_000:
        times.clear()
    return page, cursor


def _utc(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError("a time must be a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("a time must have its offset")
    return parsed.astimezone(UTC)


class _Lookup(_Wire):
    invoices: list[_Invoice]
    missing: list[str]


class _Integration(_Wire):
    id: str
    name: str
    provider: str
    kind: IntegrationKind
    last_successful_sync_at: UtcDateTime | None

    def domain(self) -> Integration:
        return Integration(**self.model_dump())


class _Integrations(_Wire):
    integrations: list[_Integration]


class _SyncRun(_Wire):
    id: str
    integration_id: str
    status: SyncStatus
    sync_from: date
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None
    records_processed: int
    error: str | None

    def domain(self) -> SyncRun:
        return SyncRun(**self.model_dump())


class _SyncRuns(_Wire):
    sync_runs: list[_SyncRun]


class _Record(_Wire):
    record_type: RecordType
    number: str
    action: str
    balance_before: Money | None
    balance_after: Money | None

    def domain(self) -> ProcessedRecord:
        return ProcessedRecord(**self.model_dump())


class _RecordPage(_Wire):
    records: list[_Record]
    next_cursor: str | None


class _RecordResync(_Wire):
    id: str
    record_type: RecordType
    record_id: str
    status: SyncStatus
    created_at: UtcDateTime
    finished_at: UtcDateTime | None
    error: str | None

    def domain(self) -> RecordResync:
        return RecordResync(**self.model_dump())


W = TypeVar("W", bound=_Wire)


def _segment(value: str) -> str:
    """One path segment, percent-encoded (invoice numbers may hold ``?``, ``#``, ``%``)."""
    return quote(value, safe="")


class PortalClient:
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
        self._observer = observer or NoObserver()
        root = base_url.rstrip("/")
        if not root.endswith(API_PREFIX):
            root += API_PREFIX
        self._http = httpx.AsyncClient(
            base_url=root,
            transport=transport,
            timeout=timeout,
            headers={"X-API-Key": api_key.get_secret_value(), "Accept": "application/json"},
            follow_redirects=False,
        )
        self._max_retries = max(0, max_retries)
        self._backoff = backoff
        self._max_retry_wait = max_retry_wait
        self._lookup_concurrency = max(1, lookup_concurrency)
        self._sleep = sleep
        self._integrations_ttl = integrations_ttl
        self._monotonic = monotonic
        self._integrations: tuple[float, list[Integration]] | None = None
        """``GET /integrations`` as last read (when, what): it seldom changes, and every
        check asks for it. Forgotten after the TTL, and whenever a full sync starts or is
        seen finished (``last_successful_sync_at`` moves then)."""

    def __repr__(self) -> str:
        return f"PortalClient(base_url={str(self._http.base_url)!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    # Invoices.
    async def get_invoice(self, number: str) -> PortalInvoice | None:
        try:
            body = await self._call("GET", f"/invoices/{_segment(number)}")
        except NotFoundError:
            return None
        return self._parse(_Invoice, body).domain()

    async def get_invoices(self, numbers: Sequence[str]) -> dict[str, PortalInvoice]:
        unique = list(dict.fromkeys(numbers))
        batches = [unique[i : i + MAX_BATCH] for i in range(0, len(unique), MAX_BATCH)]
        found: dict[str, PortalInvoice] = {}
        slots = asyncio.Semaphore(self._lookup_concurrency)
        for answer in await asyncio.gather(*(self._lookup(batch, slots) for batch in batches)):
            for invoice in answer.invoices:
                found[invoice.number] = invoice.domain()
        return found

    async def _lookup(self, batch: list[str], slots: asyncio.Semaphore) -> _Lookup:
        async with slots:  # a few batches at a time
            body = await self._call(
                "POST", "/invoices/lookup", json={"numbers": batch}, read_only=True
            )
        return self._parse(_Lookup, body)

    async def iter_open_invoices(
        self, *, page_size: int = 1000
    ) -> AsyncIterator[list[tuple[str, Listed]]]:
        """Pages in number order, as (number, listed) pairs: only the listing's fields are read.
        Each next page is asked for before the current one is decoded (``on_the_wire``)."""
        params: dict[str, str | int] = {"status": "open", "limit": max(1, min(page_size, 1000))}
        fetch: asyncio.Future[Any]
        fetch = asyncio.ensure_future(self._call("GET", "/invoices", params=params, raw=True))
        strings: dict[str | None, str | None] = {None: None}
        times: dict[str, datetime] = {}
        seen: set[str] = set()
        try:
            while True:
                raw = await fetch
                guess = cursor_at_end(raw)
                if guess is not None and guess not in seen:
                    fetch = await self._next_page(params, guess)
                body = self._json_page(raw)
                cursor = body.get("next_cursor") if isinstance(body, dict) else None
                if isinstance(cursor, str) and cursor in seen:  # paging in circles
                    raise UpstreamError("the portal's invoice pages repeat a cursor", system=SYSTEM)
                if cursor != guess:  # the raw bytes said otherwise, or nothing
                    _forget(fetch)
                    if isinstance(cursor, str):
                        fetch = await self._next_page(params, cursor)
                if isinstance(cursor, str):
                    seen.add(cursor)
                page, cursor = _listed_page(body, strings, times)
                if page:
                    yield page
                if cursor is None:
                    return
        finally:
            _forget(fetch)  # when the reader stops early

    async def _next_page(self, params: dict[str, str | int], cursor: str) -> asyncio.Future[Any]:
        """The next page asked for; returns once the request is on the wire."""
        sent, extensions = sent_signal()
        fetch = asyncio.ensure_future(
            self._call(
                "GET", "/invoices", params={**params, "cursor": cursor},
                extensions=extensions, raw=True,
            )
        )  # fmt: skip
        try:
            await until_sent(sent, fetch)
        except BaseException:  # cancelled meanwhile: the request is nobody's now
            _forget(fetch)
            raise
        return fetch

    # Integrations and syncs.
    async def list_integrations(self) -> list[Integration]:
        now = self._monotonic()
        if self._integrations is not None and now - self._integrations[0] < self._integrations_ttl:
            return list(self._integrations[1])
        body = await self._call("GET", "/integrations")
        found = [i.domain() for i in self._parse(_Integrations, body).integrations]
        self._integrations = (now, found)
        return list(found)

    async def get_integration(self, integration_id: str) -> Integration:
        body = await self._call("GET", f"/integrations/{_segment(integration_id)}")
        return self._parse(_Integration, body).domain()

    async def start_sync(
        self, integration_id: str, *, sync_from: date, idempotency_key: str | None = None
    ) -> SyncRun:
        """``idempotency_key``: the same key always gets the first answer, never a second run."""
        self._integrations = None
        body = await self._call(
            "POST",
            f"/integrations/{_segment(integration_id)}/syncs",
            json={"sync_from": sync_from.isoformat()},
            headers=_idempotent(idempotency_key),
        )
        return self._parse(_SyncRun, body).domain()

    async def get_sync_run(self, run_id: str) -> SyncRun:
        body = await self._call("GET", f"/sync-runs/{_segment(run_id)}")
        run = self._parse(_SyncRun, body).domain()
        if run.status.finished:
            self._integrations = None  # its last successful sync may have moved
        return run

    async def list_sync_runs(self, integration_id: str, *, limit: int = 10) -> list[SyncRun]:
        body = await self._call(
            "GET",
            f"/integrations/{_segment(integration_id)}/syncs",
            params={"limit": max(1, min(limit, MAX_HISTORY))},
        )
        return [run.domain() for run in self._parse(_SyncRuns, body).sync_runs]

    async def list_processed_records(self, run_id: str) -> list[ProcessedRecord]:
        records: list[ProcessedRecord] = []
        params: dict[str, str | int] = {"limit": 1000}
        while True:
            body = await self._call("GET", f"/sync-runs/{_segment(run_id)}/records", params=params)
            page = self._parse(_RecordPage, body)
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
            headers=_idempotent(idempotency_key),
        )
        return self._parse(_RecordResync, body).domain()

    async def get_record_resync(self, resync_id: str) -> RecordResync:
        body = await self._call("GET", f"/record-resyncs/{_segment(resync_id)}")
        return self._parse(_RecordResync, body).domain()

    # Payments made in the portal.
    async def list_invoice_payments(self, number: str) -> list[PortalPayment]:
        try:
            body = await self._call("GET", f"/invoices/{_segment(number)}/payments")
        except NotFoundError:
            return []
        return [p.domain() for p in parse(InvoicePayments, body).payments]

    async def get_invoice_payments(self, numbers: Sequence[str]) -> dict[str, list[PortalPayment]]:
        unique = list(dict.fromkeys(numbers))
        found: dict[str, list[PortalPayment]] = {}
        for start in range(0, len(unique), MAX_LOOKUP):
            batch = unique[start : start + MAX_LOOKUP]
            body = await self._call(
                "POST", "/payments/lookup", json={"numbers": batch}, read_only=True
            )
            answer = parse(PaymentLookup, body)
            for number in batch:
                if number not in answer.missing:
                    found.setdefault(number, [])
            for payment in answer.payments:
                found.setdefault(payment.invoice_number, []).append(payment.domain())
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

    # HTTP.
    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        json: dict[str, Any] | None = None,
        read_only: bool | None = None,
        extensions: dict[str, Any] | None = None,
        raw: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The JSON body of a 2xx answer; any other answer raised as a typed error.

        ``read_only`` (default: GET) requests are retried whatever went wrong; others only
        when the portal cannot have acted on them.
        """
        safe = method == "GET" if read_only is None else read_only
        attempt = 0
        while True:
            outcome, retry, wait = await self._attempt(
                method, path, params, json, safe=safe, extensions=extensions, headers=headers
            )
            if isinstance(outcome, httpx.Response):
                try:
                    return self._observed(outcome, method, path, raw=raw)
                finally:  # httpx's response and its stream refer to each other: unlink them
                    outcome.stream = httpx.ByteStream(b"")  # so the body is freed now
            self._observer.request(SYSTEM, outcome_of(outcome))
            if not retry or attempt >= self._max_retries:
                logger.warning("portal %s %s failed: %s", method, path, outcome)
                raise outcome
            if wait is not None and wait > self._max_retry_wait:
                logger.warning("portal %s %s: asked to wait %.0fs: giving up", method, path, wait)
                raise outcome  # longer than we may wait here: the caller decides
            delay = wait if wait is not None else self._backoff * 2**attempt
            delay = min(delay, self._max_retry_wait) + random.uniform(0, self._backoff / 4)
            attempt += 1
            logger.warning(
                "portal %s %s: %s; retry %d/%d in %.2fs",
                method, path, outcome.message, attempt, self._max_retries, delay,
            )  # fmt: skip
            self._observer.retry(SYSTEM, outcome_of(outcome))
            await self._sleep(delay)

    def _observed(
        self, response: httpx.Response, method: str, path: str, *, raw: bool = False
    ) -> Any:
        """The answer's body (its bytes with ``raw``: counted once ``_json_page`` decodes it)."""
        try:
            body = self._body(response, method, path, raw=raw)
        except UpstreamError as exc:
            self._observer.request(SYSTEM, outcome_of(exc))
            raise
        if not raw:
            self._observer.request(SYSTEM, outcome_of(None))
        return body

    def _json_page(self, raw: bytes) -> Any:
        try:
            body = json.loads(raw)
        except ValueError:
            error = UpstreamError("GET /invoices answered with invalid JSON", system=SYSTEM)
            self._observer.request(SYSTEM, outcome_of(error))
            raise error from None
        self._observer.request(SYSTEM, outcome_of(None))
        return body

    async def _attempt(
        self,
        method: str,
        path: str,
        params: dict[str, str | int] | None,
        json: dict[str, Any] | None,
        *,
        safe: bool,
        extensions: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[httpx.Response | UpstreamError, bool, float | None]:
        """(answer or error, worth retrying, seconds the portal asked to wait)."""
        try:
            response = await self._http.request(
                method, path, params=params, json=json, extensions=extensions, headers=headers
            )
        except httpx.TimeoutException as exc:
            never_sent = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            error = TransientError(f"{method} {path} timed out", system=SYSTEM)
            return error, safe or never_sent, None
        except httpx.TransportError as exc:
            never_sent = isinstance(exc, httpx.ConnectError)
            name = type(exc).__name__
            return (
                TransientError(f"{method} {path} failed: {name}", system=SYSTEM),
                safe or never_sent,
                None,
            )
        status = response.status_code
        if status == 429:
            wait = _retry_after(response)
            message = f"{method} {path} was rate limited"
            return ThrottledError(message, retry_after=wait, **_context(response)), True, wait
        if status >= 500:
            error = TransientError(_error_message(response, method, path), **_context(response))
            return error, safe or status == 503, _retry_after(response)
        return response, False, None

    def _body(self, response: httpx.Response, method: str, path: str, *, raw: bool = False) -> Any:
        """The decoded JSON of a 2xx answer (its bytes with ``raw``), or the error it is."""
        status = response.status_code
        if status < 300:
            if raw:
                return response.content
            try:
                return response.json()
            except ValueError:
                raise UpstreamError(
                    f"{method} {path} answered with invalid JSON", **_context(response)
                ) from None
        message = _error_message(response, method, path)
        context = _context(response)
        if status in (401, 403):
            raise AuthenticationError(
                "The portal refused the API key (check PORTAL_API_KEY).", **context
            )
        if status == 404:
            raise NotFoundError(message, **context)
        if status == 409 and context.get("code") == "sync_already_running":
            run_id = _error_field(response, "run_id")
            if run_id:
                raise SyncAlreadyRunning(message, run_id=run_id, request_id=context["request_id"])
        if status in (400, 422):
            raise ValidationFault(message, **context)
        raise UpstreamError(message, **context)

    @staticmethod
    def _parse(model: type[W], body: Any) -> W:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise UpstreamError(
                f"The portal answered in an unexpected shape ({where}: {problem['msg']})",
                system=SYSTEM,
            ) from None


def _idempotent(key: str | None) -> dict[str, str] | None:
    """The ``Idempotency-Key`` header of a write, when the caller has a key."""
    return None if key is None else {"Idempotency-Key": key}


def _forget(fetch: asyncio.Future[Any]) -> None:
    """A page no longer wanted: cancelled, and its error, if any, is not news."""
    fetch.cancel()
    fetch.add_done_callback(lambda f: None if f.cancelled() else f.exception())


def _error_field(response: httpx.Response, name: str) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    value = error.get(name) if isinstance(error, dict) else None
    return value if isinstance(value, str) else None


def _error_message(response: httpx.Response, method: str, path: str) -> str:
    message = _error_field(response, "message")
    return message or f"{method} {path} answered HTTP {response.status_code}"


def _context(response: httpx.Response) -> dict[str, Any]:
    return {
        "system": SYSTEM,
        "status": response.status_code,
        "code": _error_field(response, "code"),
        "request_id": response.headers.get("X-Request-Id"),
    }


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), when the portal sent it."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
