"""The QuickBooks Online adapter.

Contract tests run the same assertions against the sandbox over loopback HTTP and against
recorded Intuit-shaped responses (tests/fixtures/qbo) replayed through httpx.MockTransport.
Then OAuth, limits and retries against the sandbox.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import logging
import re
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from sandbox.qbo.app import FaultKind, QboState
from services.adapters.qbo import QboClient, listing
from services.adapters.qbo.listing import read_page
from services.errors import (
    ReconnectRequired,
    ThrottledError,
    TransientError,
    UpstreamError,
    ValidationFault,
)
from services.models import TokenSet
from tests.memory_tokens import MemoryTokenStore, initial_tokens
from tests.qbo_support import (
    BIG,
    CLIENT_ID,
    CLIENT_SECRET,
    NOW,
    Sandbox,
    Server,
    contract_state,
    server,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
FIXTURES = Path(__file__).parents[1] / "fixtures" / "qbo"
OPEN = "SELECT * FROM Invoice WHERE Balance > '0' ORDERBY Id STARTPOSITION {} MAXRESULTS 2"
RECORDED = {
    "SELECT * FROM Invoice WHERE DocNumber = '11260'": "query_11260.json",
    "SELECT * FROM Invoice WHERE DocNumber = 'D-1'": "query_d1.json",
    "SELECT * FROM Invoice WHERE DocNumber = 'no-such'": "query_empty.json",
    "SELECT * FROM Invoice WHERE DocNumber IN ('11260', '11263', 'no-such') MAXRESULTS 1000": (
        "query_lookup.json"
    ),
    OPEN.format(1): "query_open_1.json",
    OPEN.format(3): "query_open_2.json",
    OPEN.format(5): "query_open_3.json",
}


class Backend(Protocol):
    @property
    def api_calls(self) -> int: ...

    @property
    def token_calls(self) -> int: ...

    def client(self, **kwargs: Any) -> QboClient: ...

    def inject(self, fault: str) -> None: ...


class SandboxBackend:
    """The contract world served by the fake QBO."""

    FAULTS = {
        "gateway_401": FaultKind.EXPIRED_TOKEN,
        "xml_429": FaultKind.THROTTLE,
        "fault_in_200": FaultKind.FAULT_IN_200,
        "server_error": FaultKind.SERVER_ERROR,
    }

    def __init__(self, box: Sandbox) -> None:
        self.box = box

    @property
    def api_calls(self) -> int:
        return self.box.api_calls

    @property
    def token_calls(self) -> int:
        return self.box.token_calls

    def client(self, **kwargs: Any) -> QboClient:
        return self.box.client(**kwargs)

    def inject(self, fault: str) -> None:
        self.box.state.knobs.throttle_as_xml = fault == "xml_429"
        self.box.state.inject(self.FAULTS[fault])


def recorded(name: str, status: int = 200, **headers: str) -> httpx.Response:
    kind = "application/xml" if name.endswith(".xml") else "application/json;charset=UTF-8"
    return httpx.Response(
        status,
        content=(FIXTURES / name).read_bytes(),
        headers={"Content-Type": kind, "intuit_tid": "1-recorded-0001", **headers},
    )


class ReplayBackend:
    """Recorded Intuit responses, chosen by request; tokens rotate like Intuit's."""

    FAULTS = {
        "gateway_401": ("fault_401_gateway.json", 401),
        "xml_429": ("throttle_429.xml", 429),
        "fault_in_200": ("fault_in_200.json", 200),
        "server_error": ("fault_in_200.json", 500),
    }

    def __init__(self) -> None:
        self.api_calls = 0
        self.token_calls = 0
        self.refresh_token = "AB11-connected"
        self.access_token: str | None = None
        self.injected: deque[httpx.Response] = deque()

    def client(self, **kwargs: Any) -> QboClient:
        options: dict[str, Any] = {"max_retries": 3, "retry_backoff": 0.001, "max_retry_wait": 0.02}
        options.update(kwargs)
        return QboClient(
            base_url="https://sandbox-quickbooks.api.intuit.com",
            token_url="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
            realm_id="9341453050000000",
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
            token_store=MemoryTokenStore.from_refresh_token(self.refresh_token),
            transport=httpx.MockTransport(self.handle),
            **options,
        )

    def inject(self, fault: str) -> None:
        name, status = self.FAULTS[fault]
        self.injected.append(recorded(name, status))

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/v1/tokens/bearer":
            return self.token(request)
        self.api_calls += 1
        assert request.url.params["minorversion"] == "75"
        assert request.url.path.startswith("/v3/company/9341453050000000/")
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return recorded("fault_401_gateway.json", 401)
        if self.injected:
            return self.injected.popleft()
        if request.url.path.endswith("/query"):
            assert request.headers["Content-Type"] == "application/text"
            name = RECORDED.get(request.content.decode())
            return recorded(name) if name else recorded("fault_validation.json", 400)
        match = re.search(r"/invoice/(\d+)$", request.url.path)
        if match and (FIXTURES / f"invoice_{match[1]}.json").exists():
            return recorded(f"invoice_{match[1]}.json")
        return recorded("fault_610.json", 400)

    def token(self, request: httpx.Request) -> httpx.Response:
        self.token_calls += 1
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        assert request.headers["Authorization"] == f"Basic {basic}"
        form = parse_qs(request.content.decode())
        assert form["grant_type"] == ["refresh_token"]
        if form["refresh_token"] != [self.refresh_token]:
            return httpx.Response(400, json={"error": "invalid_grant"})
        body = json.loads((FIXTURES / "token.json").read_text())
        self.refresh_token = f"{body['refresh_token']}-{self.token_calls}"
        self.access_token = f"{body['access_token']}-{self.token_calls}"
        body.update(refresh_token=self.refresh_token, access_token=self.access_token)
        return httpx.Response(200, json=body)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def loopback() -> AsyncIterator[Server]:
    async with server() as running_server:
        yield running_server


@pytest_asyncio.fixture(loop_scope="module")
async def box(loopback: Server) -> Sandbox:
    return loopback.plug(contract_state())


@pytest_asyncio.fixture(loop_scope="module", params=["sandbox", "replay"])
async def backend(request: pytest.FixtureRequest, loopback: Server) -> Backend:
    if request.param == "sandbox":
        return SandboxBackend(loopback.plug(contract_state()))
    return ReplayBackend()


# -- contract: the same assertions on both backends ---------------------------------
async def test_get_invoice(backend: Backend) -> None:
    async with backend.client() as qbo:
        invoice = await qbo.get_invoice("11260")
    assert invoice is not None
    assert (invoice.number, invoice.customer_id, invoice.customer_name) == (
        "11260",
        "58",
        "Best Tackle",
    )
    assert str(invoice.balance) == "50.00" and str(invoice.total) == "50.00"
    assert invoice.currency == "USD"
    assert invoice.last_updated.utcoffset() == timedelta(0)
    assert invoice.created_at is not None and invoice.created_at <= invoice.last_updated
    assert invoice.txn_date is not None and invoice.due_date is not None


async def test_missing_invoice_is_none(backend: Backend) -> None:
    async with backend.client() as qbo:
        assert await qbo.get_invoice("no-such") is None
        assert await qbo.get_invoice("x" * 22) is None  # longer than QBO allows: not asked
    assert backend.api_calls == 1


async def test_decimals_are_exact_and_currency_may_be_absent(backend: Backend) -> None:
    async with backend.client() as qbo:
        invoice = await qbo.get_invoice("D-1")
    assert invoice is not None
    assert isinstance(invoice.total, Decimal) and invoice.total == BIG
    assert str(invoice.balance) == "0.10" and invoice.currency is None


async def test_batched_lookup(backend: Backend) -> None:
    async with backend.client() as qbo:
        found = await qbo.get_invoices(["11260", "11263", "no-such", "11260"])
    assert sorted(found) == ["11260", "11263"]
    assert found["11263"].customer_name == "Freeman Sporting Goods"
    assert found["11263"].balance == Decimal("250")
    assert backend.api_calls == 1


async def test_open_invoices_page_by_page(backend: Backend) -> None:
    async with backend.client() as qbo:
        pages = [page async for page in qbo.iter_open_invoices(page_size=2)]
        assert [[number for number, _ in page] for page in pages] == [
            ["11260", "11261"],
            ["11262", "11263"],
            ["D-1"],
        ]
    assert backend.api_calls == 3
    # Only what the digest needs is read: (balance, last update, customer, currency).
    listed = dict(pair for page in pages for pair in page)
    balance, _, customer, currency = listed["11263"]
    assert (balance, customer, currency) == (Decimal("250"), "Freeman Sporting Goods", "USD")
    assert all(isinstance(entry[0], Decimal) for entry in listed.values())
    assert all(entry[1] is not None and entry[1].tzinfo == UTC for entry in listed.values())


async def test_read_by_id(backend: Backend) -> None:
    async with backend.client() as qbo:
        invoice = await qbo.get_invoice("11260")
        assert invoice is not None
        by_id = await qbo.get_invoice_by_id(invoice.id)
        assert await qbo.get_invoice_by_id("999999") is None  # fault 610
    assert by_id == invoice


async def test_an_expired_token_is_refreshed_once_and_retried(backend: Backend) -> None:
    async with backend.client() as qbo:
        assert await qbo.get_invoice("11260") is not None
        backend.inject("gateway_401")
        assert await qbo.get_invoice("11260") is not None
    assert (backend.api_calls, backend.token_calls) == (3, 2)


@pytest.mark.parametrize("fault", ["xml_429", "fault_in_200", "server_error"])
async def test_throttling_and_server_faults_are_retried(backend: Backend, fault: str) -> None:
    async with backend.client() as qbo:
        backend.inject(fault)
        invoice = await qbo.get_invoice("11260")
    assert invoice is not None and invoice.balance == Decimal("50")
    assert backend.api_calls == 2


async def test_bad_query_is_a_validation_fault(backend: Backend) -> None:
    async with backend.client() as qbo:
        with pytest.raises(ValidationFault) as caught:
            await qbo.query("SELECT * FROM Invoice WHERE Foo = '1'")
    assert caught.value.code == "4000" and caught.value.request_id
    assert caught.value.status == 400 and backend.api_calls == 1


async def test_retries_are_bounded_and_carry_the_intuit_tid(backend: Backend) -> None:
    for _ in range(4):
        backend.inject("server_error")
    async with backend.client(max_retries=2) as qbo:
        with pytest.raises(TransientError) as caught:
            await qbo.get_invoice("11260")
    assert caught.value.status == 500 and caught.value.request_id
    assert backend.api_calls == 3


# -- OAuth against the sandbox -----------------------------------------------------
async def test_refreshes_before_expiry_by_the_clock(box: Sandbox) -> None:
    clock = [NOW]
    async with box.client(clock=lambda: clock[0]) as qbo:
        await qbo.get_invoice("11260")
        clock[0] += timedelta(seconds=3600 - 90)
        await qbo.get_invoice("11260")
        assert box.state.oauth.refresh_count == 1
        clock[0] += timedelta(seconds=40)  # within 60 s of expiry
        await qbo.get_invoice("11260")
    assert box.state.oauth.refresh_count == 2 and box.token_calls == 2


class RecordingStore(MemoryTokenStore):
    def __init__(self, tokens: TokenSet, events: list[tuple[str, str]], fail: bool = False):
        super().__init__(tokens)
        self.events = events
        self.fail = fail

    async def save(self, tokens: TokenSet) -> None:
        if self.fail:
            raise RuntimeError("database is down")
        self.events.append(("save", tokens.access_token))
        await super().save(tokens)


class RecordingTransport(httpx.AsyncBaseTransport):
    def __init__(self, events: list[tuple[str, str]]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.events = events

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v3/"):
            token = request.headers["Authorization"].removeprefix("Bearer ")
            self.events.append(("request", token))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_the_rotated_refresh_token_is_saved_before_it_is_used(box: Sandbox) -> None:
    events: list[tuple[str, str]] = []
    first_refresh_token = box.refresh_token
    store = RecordingStore(initial_tokens(first_refresh_token), events)
    async with box.client(store, transport=RecordingTransport(events)) as qbo:
        await qbo.get_invoice("11260")
        first = store.saved[-1].access_token
        assert events == [("save", first), ("request", first)]
        box.state.expire_access_tokens()
        await qbo.get_invoice("11260")
    second = store.saved[-1].access_token
    assert events[2:] == [("request", first), ("save", second), ("request", second)]
    stored = store.saved[-1].refresh_token
    assert stored != first_refresh_token
    assert box.state.refresh_tokens(CLIENT_ID, stored).status == 200  # the chain holds
    assert box.state.refresh_tokens(CLIENT_ID, first_refresh_token).status == 400


async def test_a_token_that_could_not_be_saved_is_never_used(box: Sandbox) -> None:
    events: list[tuple[str, str]] = []
    store = RecordingStore(initial_tokens(box.refresh_token), events, fail=True)
    async with box.client(store, transport=RecordingTransport(events)) as qbo:
        with pytest.raises(RuntimeError):
            await qbo.get_invoice("11260")
    assert events == [] and box.api_calls == 0


class SlowTokenTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.token_sent = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/bearer"):
            self.token_sent.set()
            await asyncio.sleep(0.1)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_cancelled_caller_does_not_lose_the_rotated_token(box: Sandbox) -> None:
    store = MemoryTokenStore.from_refresh_token(box.refresh_token)
    transport = SlowTokenTransport()
    async with box.client(store, transport=transport) as qbo:
        call = asyncio.create_task(qbo.get_invoice("11260"))
        await transport.token_sent.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        for _ in range(50):
            if store.saved:
                break
            await asyncio.sleep(0.02)
    assert box.state.oauth.refresh_count == 1 and len(store.saved) == 1
    assert box.state.refresh_tokens(CLIENT_ID, store.saved[0].refresh_token).status == 200


async def test_concurrent_calls_share_one_refresh(box: Sandbox) -> None:
    store = MemoryTokenStore.from_refresh_token(box.refresh_token)
    async with box.client(store) as one, box.client(store) as two:
        results = await asyncio.gather(*(client.get_invoice("11260") for client in (one, two) * 10))
        assert all(r is not None for r in results)
        assert box.state.oauth.refresh_count == 1
        box.state.expire_access_tokens()  # every call now gets a 401 at once
        await asyncio.gather(*(client.get_invoice("11261") for client in (one, two) * 10))
    assert box.state.oauth.refresh_count == 2 and len(store.saved) == 2


async def test_invalid_grant_means_reconnect(box: Sandbox) -> None:
    box.state.revoke(CLIENT_ID)
    async with box.client() as qbo:
        with pytest.raises(ReconnectRequired) as caught:
            await qbo.get_invoice("11260")
    assert caught.value.code == "invalid_grant" and caught.value.request_id
    async with box.client(MemoryTokenStore()) as qbo:
        with pytest.raises(ReconnectRequired):
            await qbo.get_invoice("11260")


async def test_revoked_while_running(box: Sandbox) -> None:
    async with box.client() as qbo:
        await qbo.get_invoice("11260")
        box.state.revoke(CLIENT_ID)
        with pytest.raises(ReconnectRequired):
            await qbo.get_invoice("11260")


async def test_another_company_is_refused_without_retry(box: Sandbox) -> None:
    async with box.client(realm_id="123") as qbo:
        with pytest.raises(UpstreamError) as caught:
            await qbo.get_invoice("11260")
    assert caught.value.code == "3100" and caught.value.status == 403
    assert box.api_calls == 1


# -- limits, retries and logs against the sandbox ----------------------------------
async def test_never_more_than_ten_in_flight(loopback: Server) -> None:
    box = loopback.plug(QboState.seeded(NOW, matching=1600))
    box.state.knobs.latency = 0.02
    numbers = [str(11000 + i) for i in range(1600)]
    async with box.client() as qbo:
        lookup = asyncio.create_task(qbo.get_invoices(numbers))
        singles = await asyncio.gather(*(qbo.get_invoice(n) for n in numbers[:30]))
        found = await lookup
        assert qbo.limiter.peak_in_flight == 10
    assert len(found) == 1600  # 1595 matching and the five scenarios
    assert all(s is not None for s in singles)
    assert box.state.throttle.rejected == 0 and box.state.throttle.peak_in_flight <= 10
    lookups = [q for q in box.state.queries if " IN (" in q]
    assert len(lookups) == 16 and all(q.count("'") <= 200 for q in lookups)


async def test_paging_goes_on_past_invoices_without_a_number(
    box: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.adapters.qbo")
    box.state.add_invoice("", total=Decimal("5"), invoice_id="999")  # first by Id
    async with box.client() as qbo:
        pages = [[n for n, _ in page] async for page in qbo.iter_open_invoices(page_size=2)]
    assert pages == [["11260"], ["11261", "11262"], ["11263", "D-1"]]
    assert box.api_calls == 4
    assert "without a DocNumber skipped (Id=999)" in caplog.text


async def test_a_digest_costs_one_request_per_thousand(loopback: Server) -> None:
    box = loopback.plug(QboState.seeded(NOW, matching=2100))
    expected = sum(1 for inv in box.state.invoices.all_by_id() if inv.balance > 0)
    async with box.client() as qbo:
        pages = [page async for page in qbo.iter_open_invoices()]
        assert await qbo.count_open_invoices() == expected
    assert [len(p) for p in pages] == [1000, 1000, expected - 2000]
    assert box.api_calls == 4  # three pages and the count


async def test_throttle_waits_retry_after_or_a_minute_capped(box: Sandbox) -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async with box.client(sleep=sleep, max_retry_wait=5.0) as qbo:
        box.state.inject(FaultKind.THROTTLE)
        await qbo.get_invoice("11260")
        box.state.knobs.retry_after = 0.5
        box.state.inject(FaultKind.THROTTLE)
        await qbo.get_invoice("11260")
        box.state.knobs.max_concurrent = 0  # throttled for good
        with pytest.raises(ThrottledError) as caught:
            await qbo.get_invoice("11260")
    assert sleeps[:2] == [5.0, 0.5] and len(sleeps) == 2 + 3
    assert caught.value.code == "3001" and caught.value.retry_after == 0.5


async def test_timeouts_and_dropped_connections_are_retried(box: Sandbox) -> None:
    box.state.knobs.timeout_seconds = 1.0
    box.state.inject(FaultKind.TIMEOUT, FaultKind.DROP, FaultKind.UNAVAILABLE)
    async with box.client(timeout=0.3) as qbo:
        assert await qbo.get_invoice("11260") is not None
    assert box.api_calls == 4


async def test_random_faults_with_a_seed(box: Sandbox) -> None:
    box.state.reseed(3)
    box.state.knobs.fault_rate = 0.3
    box.state.knobs.fault_kinds = (FaultKind.THROTTLE, FaultKind.SERVER_ERROR, FaultKind.DROP)
    async with box.client(max_retries=8) as qbo:
        results = [await qbo.get_invoice(n) for n in ("11260", "11261", "11262", "11263") * 3]
    assert all(r is not None for r in results)
    assert box.api_calls > 12


async def test_errors_are_logged_with_the_intuit_tid_and_no_secrets(
    box: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = MemoryTokenStore.from_refresh_token(box.refresh_token)
    box.state.inject(FaultKind.SERVER_ERROR, FaultKind.EXPIRED_TOKEN)
    async with box.client(store) as qbo:
        await qbo.get_invoice("11260")
        with pytest.raises(ValidationFault):
            await qbo.query("SELECT * FROM Nothing")
    records = [r for r in caplog.records if r.name == "services.adapters.qbo"]
    text = "\n".join(r.getMessage() for r in records)
    assert "intuit_tid=1-" in text and any(r.levelno == logging.ERROR for r in records)
    secrets = [CLIENT_SECRET, box.refresh_token] + [
        t for s in store.saved for t in (s.access_token, s.refresh_token)
    ]
    everything = caplog.text + text
    assert not [s for s in secrets if s in everything]


async def test_tokens_never_show_in_reprs() -> None:
    tokens = TokenSet(
        access_token="secret-access",
        access_token_expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        refresh_token="secret-refresh",
    )
    assert "secret" not in repr(tokens) and "secret" not in str(tokens)


# -- listing pages: only the listing's fields, decoded by msgspec -------------------------
def listing_page(*invoices: dict[str, Any]) -> bytes:
    return json.dumps({"QueryResponse": {"Invoice": list(invoices), "maxResults": 9}}).encode()


def listed(number: str, balance: Any = 12.5) -> dict[str, Any]:
    return {
        "Id": f"id-{number}",
        "DocNumber": number,
        "Balance": balance,
        "TotalAmt": 99,
        "CustomerRef": {"value": "1", "name": "Cool Cars"},
        "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
        "MetaData": {"LastUpdatedTime": "2026-11-20T16:45:00-07:00"},
        "Line": [{"Amount": 1.5, "DetailType": "SalesItemLineDetail"}],
    }


async def test_a_listing_page_keeps_what_the_digest_needs_exactly() -> None:
    content = listing_page(listed("1"), listed("2", 1234.5), {"Id": "3", "Balance": 1})
    page = read_page(content.replace(b"1234.5", str(BIG).encode()))
    assert page.returned == 3 and page.fault is None  # the row without a number counts
    (one, first), (two, second) = page.pairs
    assert (one, two) == ("1", "2")
    assert first == (
        Decimal("12.50"),
        datetime(2026, 11, 20, 23, 45, tzinfo=UTC),
        "Cool Cars",
        "USD",
    )
    assert str(first[0]) == "12.50" and second[0] == BIG  # exact: never through a float


async def test_a_listing_page_is_decoded_into_objects_the_collector_does_not_track() -> None:
    """A page's rows hold no containers: untracked, a page in flight never sets off a full
    collection of the bot's process (``listing``'s docstring)."""
    answer = listing._DECODER.decode(listing_page(listed("1"), listed("2")))
    assert answer.QueryResponse is not None
    rows = answer.QueryResponse.Invoice
    parts: list[object] = [answer, answer.QueryResponse, *rows]
    parts += [part for row in rows for part in (row.CustomerRef, row.CurrencyRef, row.MetaData)]
    assert len(parts) == 10 and not any(gc.is_tracked(part) for part in parts)


async def test_a_fault_inside_a_listing_page_is_read() -> None:
    page = read_page((FIXTURES / "fault_in_200.json").read_bytes())
    assert page.pairs == [] and page.fault is not None and page.fault.code


@pytest.mark.parametrize(
    "content",
    [
        listing_page(listed("7", "not an amount")),
        listing_page(listed("7", True)),
        listing_page({**listed("7"), "MetaData": {}}),
        listing_page({**listed("7"), "CustomerRef": {"name": 5}}),
        b'{"QueryResponse": {"Invoice": {}}}',
    ],
    ids=["text amount", "boolean amount", "no last update", "name not text", "not a list"],
)
async def test_a_malformed_listing_page_is_refused(content: bytes) -> None:
    with pytest.raises(UpstreamError, match="malformed invoice") as caught:
        read_page(content)
    assert caught.value.system == "QuickBooks Online"


async def test_a_listing_page_that_is_not_json_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        read_page(b'{"QueryResponse": {"Invoice": [')


async def test_an_answer_that_is_not_json_is_transient_and_retried() -> None:
    backend = ReplayBackend()
    busy = httpx.Response(200, content=b"<html>busy</html>", headers={"intuit_tid": "1-x"})
    backend.injected.extend([busy] * 4)  # the first try and max_retries=3
    async with backend.client() as qbo:
        with pytest.raises(TransientError, match="not JSON"):
            [page async for page in qbo.iter_open_invoices(page_size=2)]
    assert backend.api_calls == 4


async def test_a_malformed_invoice_in_a_listing_fails_it(loopback: Server) -> None:
    box = loopback.plug(QboState.seeded(NOW))
    invoice = next(i for i in box.state.invoices.all_by_id() if i.balance > 0)
    invoice.extra = {"Balance": "not an amount"}
    async with box.client() as qbo:
        with pytest.raises(UpstreamError, match="malformed invoice"):
            [page async for page in qbo.iter_open_invoices()]
