"""The adapter's pieces without a server: fault parsing, error mapping, mapping of Intuit
documents, the rate limiter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.adapters.limits import RateLimiter
from services.adapters.qbo import QboClient, quote, to_invoice
from services.adapters.qbo.faults import (
    error_for,
    fault_from_json,
    fault_from_response,
    fault_from_xml,
    parse_json,
)
from services.errors import (
    AuthenticationError,
    NotFoundError,
    ThrottledError,
    TransientError,
    UpstreamError,
    ValidationFault,
)
from tests.memory_tokens import MemoryTokenStore

FIXTURES = Path(__file__).parents[1] / "fixtures" / "qbo"


def fixture(name: str) -> Any:
    return parse_json((FIXTURES / name).read_text())


def test_gateway_fault_in_lower_case() -> None:
    fault = fault_from_json(fixture("fault_401_gateway.json"))
    assert fault is not None and fault.code == "3200" and fault.type == "AUTHENTICATION"
    assert "AuthenticationFailed" in fault.message


def test_xml_throttle_page() -> None:
    fault = fault_from_xml((FIXTURES / "throttle_429.xml").read_text())
    assert fault is not None and (fault.code, fault.type) == ("3001", "SERVICE")
    assert fault.detail == "The request limit was reached."
    assert fault_from_xml("<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>") is None
    assert fault_from_xml("<html>Bad gateway") is None


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (429, "throttle_429.xml", ThrottledError),
        (401, "fault_401_gateway.json", AuthenticationError),
        (400, "fault_610.json", NotFoundError),
        (400, "fault_validation.json", ValidationFault),
        (200, "fault_in_200.json", TransientError),
        (500, "fault_in_200.json", TransientError),
        (403, "fault_403.json", UpstreamError),
        (502, None, TransientError),
    ],
)
def test_errors_by_status_and_fault(status: int, body: str | None, error: type[Exception]) -> None:
    content = (FIXTURES / body).read_bytes() if body else b"<html>Bad Gateway</html>"
    response = httpx.Response(status, content=content)
    raised = error_for(status, fault_from_response(response), request_id="1-abc")
    assert type(raised) is error
    assert raised.request_id == "1-abc" and raised.system == "QuickBooks Online"


def test_authentication_errors_leave_the_detail_out() -> None:
    raised = error_for(401, fault_from_json(fixture("fault_401_gateway.json")), request_id=None)
    assert "eyJ" not in str(raised)


def test_intuit_document_to_invoice() -> None:
    raw = fixture("query_11260.json")["QueryResponse"]["Invoice"][0]
    invoice = to_invoice(raw)
    assert invoice.last_updated == datetime(2026, 11, 28, 16, 12, 44, tzinfo=UTC)
    assert invoice.created_at == datetime(2026, 11, 12, 17, 2, 11, tzinfo=UTC)
    assert str(invoice.balance) == "50.00"  # Intuit wrote 50.0
    raw = fixture("query_d1.json")["QueryResponse"]["Invoice"][0]
    assert to_invoice(raw).total == Decimal("98765432109876.54")
    three_places = to_invoice({**raw, "Balance": Decimal("0.125")})
    assert three_places.balance == Decimal("0.125")  # never rounded silently


async def test_a_malformed_invoice_is_an_upstream_error() -> None:
    text = (FIXTURES / "query_11260.json").read_text()
    text = text.replace('"LastUpdatedTime"', '"Changed"')

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/bearer"):
            return httpx.Response(200, json={"access_token": "a", "expires_in": 3600})
        return httpx.Response(200, text=text)

    client = QboClient(
        base_url="https://qbo.test",
        token_url="https://qbo.test/oauth2/v1/tokens/bearer",
        realm_id="1",
        client_id="c",
        client_secret=SecretStr("s"),
        token_store=MemoryTokenStore.from_refresh_token("r"),
        transport=httpx.MockTransport(handler),
    )
    async with client:
        with pytest.raises(UpstreamError, match="malformed invoice"):
            await client.get_invoice("11260")


def test_quote_escapes_quotes_and_backslashes() -> None:
    assert quote("O'Neil\\1") == "'O\\'Neil\\\\1'"


async def test_sliding_window_never_exceeds_the_rate() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(
        max_concurrency=3, max_per_window=5, window=60, clock=lambda: now[0], sleep=sleep
    )
    starts: list[float] = []
    for _ in range(12):
        async with limiter.slot():
            starts.append(now[0])
        now[0] += 1
    assert starts[:7] == [0, 1, 2, 3, 4, 60, 61]
    for first in starts:
        assert sum(1 for t in starts if first <= t < first + 60) <= 5


async def test_concurrency_is_capped() -> None:
    limiter = RateLimiter(max_concurrency=3, max_per_window=1000)

    async def work() -> None:
        async with limiter.slot():
            await asyncio.sleep(0.005)

    await asyncio.gather(*(work() for _ in range(20)))
    assert limiter.peak_in_flight == 3 and limiter.in_flight == 0
