"""The portal adapter (PortalClient) against the sandbox portal over loopback HTTP, and
against replayed answers (httpx.MockTransport), with the same contract assertions."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from pydantic import SecretStr

from sandbox.portal.connect import DEFAULT_API_KEY
from sandbox.portal.records import Invoice
from sandbox.scenarios import INTEGRATION_ID
from services.adapters.portal import PortalClient
from services.adapters.portal.errors import SyncAlreadyRunning
from services.adapters.portal.listing import read_page
from services.errors import (
    AuthenticationError,
    NotFoundError,
    ThrottledError,
    TransientError,
    UpstreamError,
)
from services.models import IntegrationKind, RecordType, SyncStatus
from services.ports import BillingPortal
from tests.portal_world import World, running_world

SPEC = schemathesis.openapi.from_path(
    Path(__file__).resolve().parents[2] / "docs" / "portal-api.yaml"
)
KEY = SecretStr(DEFAULT_API_KEY)


class Sleeps:
    """Stands in for asyncio.sleep: records the waits, waits for nothing."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# Replayed answers, as the sandbox gives them (each is checked against the document).
def _invoice(number: str, balance: str, customer: tuple[str, str], total: str) -> dict[str, Any]:
    return {
        "number": number,
        "external_id": str(int(number) - 10000),
        "customer": {"id": customer[0], "name": customer[1]},
        "total": total,
        "balance": balance,
        "currency": "USD",
        "status": "paid" if balance == "0.00" else "open",
        "integration_id": INTEGRATION_ID,
        "last_synced_at": "2026-01-27T09:00:00Z",
        "updated_at": "2026-01-27T09:00:00Z",
    }


INV_11260 = _invoice("11260", "40.00", ("58", "Best Tackle"), "50.00")
INV_11264 = _invoice("11264", "89.50", ("62", "Geeta Kalapatapu"), "89.50")
INV_11000 = _invoice("11000", "50.00", ("1", "Amy's Bird Sanctuary"), "100.00")
INTEGRATION = {
    "id": INTEGRATION_ID,
    "name": "QuickBooks Online (Best MSP)",
    "provider": "quickbooks_online",
    "kind": "accounting",
    "last_successful_sync_at": "2026-01-27T09:00:00Z",
    "connected_at": "2024-02-01T10:00:00Z",
}


def _run(status: str, records: int, run_id: str = "run-000000000002") -> dict[str, Any]:
    done = status in ("completed", "failed")
    return {
        "id": run_id,
        "integration_id": INTEGRATION_ID,
        "status": status,
        "sync_from": "2026-01-29",
        "created_at": "2026-01-31T09:00:00Z",
        "started_at": "2026-01-31T09:00:01Z" if status != "queued" else None,
        "finished_at": "2026-01-31T09:00:25Z" if done else None,
        "records_processed": records,
        "error": None,
    }


def _resync(status: str) -> dict[str, Any]:
    return {
        "id": "rr-000000000001",
        "record_type": "invoice",
        "record_id": "11260",
        "status": status,
        "created_at": "2026-01-31T09:00:00Z",
        "started_at": "2026-01-31T09:00:00.250000Z" if status != "queued" else None,
        "finished_at": "2026-01-31T09:00:01Z" if status == "completed" else None,
        "error": None,
    }


def _not_found(what: str) -> tuple[int, dict[str, Any]]:
    return 404, {"error": {"code": "not_found", "message": f"No {what}."}}


RECORD = {"record_type": "invoice", "number": "11260", "action": "updated",
          "balance_before": "40.00", "balance_after": "50.00", "message": "changed: balance"}  # fmt: skip
COMPANY = {"record_type": "company", "number": "58", "action": "unchanged",
           "balance_before": None, "balance_after": None, "message": "Best Tackle"}  # fmt: skip
SYNCS = f"/integrations/{INTEGRATION_ID}/syncs"
REPLAYS: dict[tuple[str, str], tuple[str, tuple[int, dict[str, Any]]]] = {
    # (method, path?query): (the document's path, (status, body))
    ("GET", "/invoices/11260"): ("/invoices/{number}", (200, INV_11260)),
    ("GET", "/invoices/99999"): ("/invoices/{number}", _not_found("invoice 99999")),
    ("POST", "/invoices/lookup"): (
        "/invoices/lookup",
        (200, {"invoices": [INV_11260, INV_11264], "missing": ["99999"]}),
    ),
    ("GET", "/invoices?status=open&limit=2"): (
        "/invoices",
        (200, {"invoices": [INV_11000, INV_11260], "next_cursor": "bjoxMTI2MA"}),
    ),
    ("GET", "/invoices?status=open&limit=2&cursor=bjoxMTI2MA"): (
        "/invoices",
        (200, {"invoices": [INV_11264], "next_cursor": None}),
    ),
    ("GET", "/integrations"): ("/integrations", (200, {"integrations": [INTEGRATION]})),
    ("GET", f"/integrations/{INTEGRATION_ID}"): (
        "/integrations/{integration_id}",
        (200, INTEGRATION),
    ),
    ("GET", "/companies/58"): (
        "/companies/{company_id}",
        (200, {"id": "58", "name": "Best Tackle", "updated_at": "2026-01-27T09:00:00Z"}),
    ),
    ("GET", "/contacts/58"): (
        "/contacts/{contact_id}",
        (200, {"id": "58", "company_id": "58", "name": "Billing contact, Best Tackle"}),
    ),
    ("GET", "/companies/999999"): ("/companies/{company_id}", _not_found("company 999999")),
    ("POST", SYNCS): ("/integrations/{integration_id}/syncs", (202, _run("queued", 0))),
    ("GET", f"{SYNCS}?limit=5"): (
        "/integrations/{integration_id}/syncs",
        (200, {"sync_runs": [_run("completed", 2), _run("completed", 0, "run-000000000001")]}),
    ),
    ("GET", "/sync-runs/run-000000000002"): ("/sync-runs/{run_id}", (200, _run("completed", 2))),
    ("GET", "/sync-runs/run-000000000002/records?limit=1000"): (
        "/sync-runs/{run_id}/records",
        (200, {"records": [RECORD], "next_cursor": "bzox"}),
    ),
    ("GET", "/sync-runs/run-000000000002/records?limit=1000&cursor=bzox"): (
        "/sync-runs/{run_id}/records",
        (200, {"records": [COMPANY], "next_cursor": None}),
    ),
    ("GET", "/sync-runs/run-nope"): ("/sync-runs/{run_id}", _not_found("sync run run-nope")),
    ("POST", "/record-resyncs"): ("/record-resyncs", (202, _resync("queued"))),
    ("GET", "/record-resyncs/rr-000000000001"): (
        "/record-resyncs/{resync_id}",
        (200, _resync("completed")),
    ),
    ("GET", "/record-resyncs/rr-nope"): (
        "/record-resyncs/{resync_id}",
        _not_found("record resync rr-nope"),
    ),
}


def replay(request: httpx.Request) -> httpx.Response:
    assert request.headers["X-API-Key"] == DEFAULT_API_KEY
    path = request.url.raw_path.decode().removeprefix("/api/v1")
    key = (request.method, path.removesuffix("?"))
    if key not in REPLAYS:
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})
    _, (status, body) = REPLAYS[key]
    return httpx.Response(status, json=body, headers={"X-Request-Id": "replay"})


def test_replays_conform_to_the_document() -> None:
    for (method, url), (path, (status, body)) in REPLAYS.items():
        request = httpx.Request(method, f"http://portal/api/v1{url}")
        response = httpx.Response(status, json=body, request=request)
        response.elapsed = timedelta(0)
        SPEC[path][method].validate_response(response)


@pytest.fixture(params=["sandbox", "replay"])
async def portal(request: pytest.FixtureRequest) -> AsyncIterator[PortalClient]:
    if request.param == "replay":
        client = PortalClient(
            base_url="http://portal.test", api_key=KEY, transport=httpx.MockTransport(replay)
        )
        yield client
        await client.aclose()
        return
    async with running_world(sync_duration=0.05, record_resync_seconds=0.02) as world:
        client = PortalClient(base_url=world.portal_url, api_key=KEY)
        yield client
        await client.aclose()


async def test_the_client_is_a_billing_portal() -> None:
    portal: BillingPortal = PortalClient(base_url="http://portal.test", api_key=KEY)  # mypy checks
    await portal.aclose()


# The contract, whichever side answers.
async def test_invoice_by_number(portal: PortalClient) -> None:
    invoice = await portal.get_invoice("11260")
    assert invoice is not None
    assert invoice.balance == Decimal("40.00") and invoice.total == Decimal("50.00")
    assert invoice.customer_name == "Best Tackle" and invoice.customer_id == "58"
    assert invoice.status == "open" and invoice.integration_id == INTEGRATION_ID
    assert invoice.last_synced_at is not None and invoice.last_synced_at.tzinfo == UTC
    assert isinstance(invoice.external_id, str)
    assert await portal.get_invoice("99999") is None


async def test_batched_look_up(portal: PortalClient) -> None:
    found = await portal.get_invoices(["11260", "11264", "99999", "11260"])
    assert set(found) == {"11260", "11264"}
    assert found["11264"].balance == Decimal("89.50")


async def test_open_invoices_follow_the_cursor(portal: PortalClient) -> None:
    pages = [page async for page in portal.iter_open_invoices(page_size=2)]
    numbers = [number for page in pages for number, _ in page]
    assert len(pages) >= 2 and all(len(page) <= 2 for page in pages)
    assert numbers == sorted(set(numbers)) and "11260" in numbers
    # Only what the digest needs is read, and it is what the full invoice says.
    listed = dict(pair for page in pages for pair in page)
    invoice = await portal.get_invoice("11260")
    assert invoice is not None
    assert listed["11260"] == (
        invoice.balance,
        invoice.last_synced_at,
        invoice.customer_name,
        invoice.currency,
    )
    assert listed["11260"][0] == Decimal("40.00")


async def test_integrations(portal: PortalClient) -> None:
    [integration] = await portal.list_integrations()
    assert integration.id == INTEGRATION_ID and integration.kind is IntegrationKind.ACCOUNTING
    assert integration.provider == "quickbooks_online"
    assert integration.last_successful_sync_at is not None
    assert await portal.get_integration(INTEGRATION_ID) == integration
    assert integration.connected_at is not None  # contract 1.2
    assert integration.connected_at < integration.last_successful_sync_at


async def test_companies_and_contacts_by_id(portal: PortalClient) -> None:
    company = await portal.get_record(RecordType.COMPANY, "58")
    contact = await portal.get_record(RecordType.CONTACT, "58")
    assert company is not None and company.name == "Best Tackle"
    assert contact is not None and contact.company_id == "58"
    assert contact.name == "Billing contact, Best Tackle"
    assert await portal.get_record(RecordType.COMPANY, "999999") is None
    assert await portal.get_record(RecordType.CONTACT, "999999") is None


async def test_full_sync_and_its_records(portal: PortalClient) -> None:
    started = await portal.start_sync(
        INTEGRATION_ID, sync_from=datetime.now(UTC).date() - timedelta(days=2)
    )
    assert started.status is SyncStatus.QUEUED and started.integration_id == INTEGRATION_ID
    run = started
    while not run.status.finished:
        run = await portal.get_sync_run(started.id)
    assert run.status is SyncStatus.COMPLETED and run.finished_at is not None
    records = await portal.list_processed_records(run.id)
    assert len(records) == run.records_processed
    [invoice] = [r for r in records if r.number == "11260"]
    assert invoice.record_type is RecordType.INVOICE and invoice.action == "updated"
    assert (invoice.balance_before, invoice.balance_after) == (Decimal("40.00"), Decimal("50.00"))
    assert any(r.record_type is RecordType.COMPANY for r in records)
    history = await portal.list_sync_runs(INTEGRATION_ID, limit=5)
    assert history[0].id == run.id and len(history) >= 2
    assert history == sorted(history, key=lambda r: r.created_at, reverse=True)


async def test_record_resync(portal: PortalClient) -> None:
    started = await portal.resync_record(RecordType.INVOICE, "11260")
    assert started.status is SyncStatus.QUEUED and started.record_id == "11260"
    resync = started
    while not resync.status.finished:
        resync = await portal.get_record_resync(started.id)
    assert resync.status is SyncStatus.COMPLETED and resync.error is None


async def test_unknown_runs_and_resyncs(portal: PortalClient) -> None:
    with pytest.raises(NotFoundError):
        await portal.get_sync_run("run-nope")
    with pytest.raises(NotFoundError):
        await portal.get_record_resync("rr-nope")


# Failures, against the sandbox's fault injection.
@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with running_world(sync_duration=0.3, record_resync_seconds=0.02) as world:
        yield world


def client(world: World, **kwargs: Any) -> PortalClient:
    return PortalClient(base_url=world.portal_url, api_key=KEY, **kwargs)


async def test_second_full_sync_is_refused_with_the_running_run(world: World) -> None:
    portal = client(world)
    first = await portal.start_sync(INTEGRATION_ID, sync_from=datetime.now(UTC).date())
    with pytest.raises(SyncAlreadyRunning) as refused:
        await portal.start_sync(INTEGRATION_ID, sync_from=datetime.now(UTC).date())
    assert refused.value.run_id == first.id and refused.value.status == 409
    await portal.aclose()


async def test_bad_api_key_is_refused_without_showing_it(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    portal = PortalClient(base_url=world.portal_url, api_key=SecretStr("wrong-key-123"))
    with pytest.raises(AuthenticationError) as refused:
        await portal.get_invoice("11260")
    assert isinstance(refused.value, UpstreamError) and refused.value.status == 401
    assert "wrong-key-123" not in str(refused.value) + repr(portal) + caplog.text
    await portal.aclose()


async def test_throttled_reads_wait_as_told_then_succeed(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sleeps = Sleeps()
    portal = client(world, sleep=sleeps, backoff=0.01)
    world.portal.inject(429, count=2, retry_after=7)
    invoice = await portal.get_invoice("11260")
    assert invoice is not None and invoice.balance == Decimal("40.00")
    assert len(sleeps.waits) == 2 and all(7 <= w < 7.01 for w in sleeps.waits)
    assert world.portal.request_count("GET", "/api/v1/invoices/11260") == 3
    assert DEFAULT_API_KEY not in caplog.text
    await portal.aclose()


async def test_throttling_that_persists_is_a_throttled_error(world: World) -> None:
    portal = client(world, sleep=Sleeps(), max_retries=2)
    world.portal.inject(429, count=5, retry_after=30)
    with pytest.raises(ThrottledError) as throttled:
        await portal.list_integrations()
    assert throttled.value.retry_after == 30
    assert world.portal.request_count("GET", "/api/v1/integrations") == 3
    await portal.aclose()


async def test_a_wait_longer_than_allowed_is_cut_to_it_and_the_request_tried_again(
    world: World,
) -> None:
    sleeps = Sleeps()
    portal = client(world, sleep=sleeps, max_retry_wait=10)
    world.portal.inject(429, retry_after=120)
    assert await portal.get_invoice("11260") is not None
    assert sleeps.waits == [10]
    assert world.portal.request_count("GET", "/api/v1/invoices/11260") == 2
    await portal.aclose()


async def test_server_errors_on_reads_are_retried_then_transient(world: World) -> None:
    portal = client(world, sleep=Sleeps(), max_retries=3)
    world.portal.inject(500, count=3)
    assert await portal.get_integration(INTEGRATION_ID)
    world.portal.inject(500, count=4)
    with pytest.raises(TransientError):
        await portal.get_integration(INTEGRATION_ID)
    assert world.portal.request_count("GET", "/api/v1/integrations/") == 8
    await portal.aclose()


async def test_writes_are_not_repeated_after_a_server_error(world: World) -> None:
    sleeps = Sleeps()
    portal = client(world, sleep=sleeps)
    world.portal.inject(500, path="/api/v1/record-resyncs")
    with pytest.raises(TransientError):
        await portal.resync_record(RecordType.INVOICE, "11260")
    assert world.portal.request_count("POST", "/api/v1/record-resyncs") == 1
    # 503 and 429 mean the portal did nothing: those are retried.
    world.portal.inject(503, path="/api/v1/record-resyncs")
    world.portal.inject(429, path="/api/v1/record-resyncs")
    resync = await portal.resync_record(RecordType.INVOICE, "11260")
    assert resync.status is SyncStatus.QUEUED
    assert world.portal.request_count("POST", "/api/v1/record-resyncs") == 4
    await portal.aclose()


async def test_timeouts_on_reads_are_retried(world: World) -> None:
    world.portal.timeout_seconds = 0.5
    portal = client(world, sleep=Sleeps(), timeout=0.1)
    world.portal.inject_timeout()
    assert (await portal.list_integrations())[0].id == INTEGRATION_ID
    assert world.portal.request_count("GET", "/api/v1/integrations") == 2
    await portal.aclose()


async def test_dropped_connections_on_reads_are_retried(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    portal = client(world, sleep=Sleeps())
    world.portal.inject_drop(count=2)
    assert await portal.get_invoice("11260") is not None
    assert world.portal.request_count("GET", "/api/v1/invoices/11260") == 3
    world.portal.inject_drop(path="/api/v1/integrations/int-qbo-1/syncs")
    with pytest.raises(TransientError):
        await portal.start_sync(INTEGRATION_ID, sync_from=datetime.now(UTC).date())
    assert "Traceback" not in caplog.text
    await portal.aclose()


async def test_invoice_numbers_are_encoded_in_paths(world: World) -> None:
    odd = "INV/7 #?a%b"
    seeded = world.portal.invoices["11260"]
    world.portal.put_invoice(Invoice(**{**seeded.__dict__, "number": odd}))
    portal = client(world)
    invoice = await portal.get_invoice(odd)
    assert invoice is not None and invoice.number == odd
    assert await portal.get_invoice("11260/../11264") is None
    assert await portal.get_invoices([odd, "11260"]) == {
        odd: invoice,
        "11260": await portal.get_invoice("11260"),
    }
    await portal.aclose()


async def test_batches_of_a_thousand(world: World) -> None:
    portal = client(world)
    numbers = [str(n) for n in range(10_000, 12_500)]
    found = await portal.get_invoices(numbers)
    assert "11260" in found and "11263" not in found
    assert world.portal.request_count("POST", "/api/v1/invoices/lookup") == 3
    await portal.aclose()


async def test_an_answer_of_the_wrong_shape_is_an_upstream_error() -> None:
    def float_money(request: httpx.Request) -> httpx.Response:
        body = json.loads(json.dumps(INV_11260))
        body["balance"] = 40.0
        return httpx.Response(200, json=body)

    portal = PortalClient(
        base_url="http://portal.test/api/v1",
        api_key=KEY,
        transport=httpx.MockTransport(float_money),
    )
    with pytest.raises(UpstreamError, match="unexpected shape"):
        await portal.get_invoice("11260")
    await portal.aclose()


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"invoices": {}, "next_cursor": None},
        {"invoices": [], "next_cursor": 3},
        {"invoices": [{"number": 1}], "next_cursor": None},
        {"invoices": [{"number": "1", "customer": {"name": "A"}, "currency": "USD",
                       "balance": 10.5, "last_synced_at": None}], "next_cursor": None},
        {"invoices": [{"number": "1", "customer": {"name": "A"}, "currency": "USD",
                       "balance": "10.50", "last_synced_at": "2026-11-30T10:00:00"}],
         "next_cursor": None},
        {"invoices": [{"number": "1", "customer": {"name": "A"}, "currency": "USD",
                       "balance": "ten", "last_synced_at": None}], "next_cursor": None},
    ],
)  # fmt: skip
def test_a_listing_page_in_an_unexpected_shape_is_refused(body: Any) -> None:
    with pytest.raises(UpstreamError, match="unexpected shape"):
        read_page(json.dumps(body).encode())


def test_a_listing_page_keeps_only_what_the_digest_needs() -> None:
    row = {"number": "7", "customer": {"id": "c", "name": "Acme"}, "currency": None,
           "balance": "10.5", "last_synced_at": "2026-11-30T10:00:00+01:00", "status": "open"}  # fmt: skip
    page, cursor = read_page(
        json.dumps({"invoices": [row, {**row, "number": "8"}], "next_cursor": "c2"}).encode()
    )
    assert cursor == "c2" and [number for number, _ in page] == ["7", "8"]
    synced = datetime(2026, 11, 30, 9, tzinfo=UTC)
    assert page[0][1] == (Decimal("10.50"), synced, "Acme", None)
    assert str(page[0][1][0]) == "10.50"  # money: a Decimal to the cent, never a float


async def test_payments_the_portal_deferred_are_asked_for_again() -> None:
    """Contract 1.1: a look-up answers ``deferred`` for invoices whose payments did not fit;
    the adapter asks again (alone, when a whole batch was deferred) and counts none as
    having no payments meanwhile."""
    asked: list[list[str]] = []
    payment = {
        "id": "pay-1",
        "invoice_number": "11264",
        "reference": "CB-4471",
        "amount": "25.00",
        "currency": "USD",
        "paid_at": "2026-11-28T14:02:11Z",
        "transfer_status": "failed",
        "transfer_error": "QuickBooks refused: the invoice is already paid.",
        "transferred_at": "2026-11-28T14:07:11Z",
        "external_id": None,
        "invoice_external_id": "1264",
    }

    def answer(request: httpx.Request) -> httpx.Response:
        numbers = json.loads(request.content)["numbers"]
        asked.append(numbers)
        if len(asked) == 1:
            return httpx.Response(200, json={"payments": [], "missing": [], "deferred": numbers})
        payments = [payment] if "11264" in numbers else []
        return httpx.Response(200, json={"payments": payments, "missing": [], "deferred": []})

    portal = PortalClient(
        base_url="http://portal.test", api_key=KEY, transport=httpx.MockTransport(answer)
    )
    try:
        found = await portal.get_invoice_payments(["11264", "11265"])
    finally:
        await portal.aclose()
    assert asked == [["11264", "11265"], ["11264"], ["11265"]]
    assert [p.reference for p in found["11264"]] == ["CB-4471"] and found["11265"] == []
