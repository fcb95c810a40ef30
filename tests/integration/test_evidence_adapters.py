"""The adapters' evidence reads, against the sandbox over loopback and against recorded
answers (httpx.MockTransport), with the same assertions on both."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from pydantic import SecretStr

from sandbox.portal.connect import DEFAULT_API_KEY
from sandbox.qbo.app import QboState
from services.adapters.portal import PortalClient
from services.adapters.qbo import QboClient
from services.models import TransferStatus
from tests.memory_tokens import MemoryTokenStore
from tests.portal_world import running_world
from tests.qbo_support import CLIENT_ID, CLIENT_SECRET, NOW, running

FIXTURES = Path(__file__).parents[1] / "fixtures" / "qbo" / "evidence"
RECORDED: dict[str, str] = json.loads((FIXTURES / "manifest.json").read_text())
SPEC = schemathesis.openapi.from_path(
    Path(__file__).resolve().parents[2] / "docs" / "portal-api.yaml"
)
# The contract world (matching=0): 11260-11270 are Ids 1001-1011; 11267 was recreated as
# 6008 (its first Id, 1008, deleted).
NUMBERS = ["11265", "11267", "11270", "no-such"]


def replay_qbo(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/tokens/bearer"):
        return httpx.Response(200, json={"access_token": "at", "expires_in": 3600,
                                         "refresh_token": "rt", "token_type": "bearer",
                                         "x_refresh_token_expires_in": 8640000})  # fmt: skip
    name = RECORDED.get(request.content.decode())
    if name is None:
        return httpx.Response(400, json={"Fault": {"Error": [{"Message": "unrecorded",
                                         "code": "4000"}], "type": "ValidationFault"}})  # fmt: skip
    return httpx.Response(200, content=(FIXTURES / name).read_bytes())


@pytest.fixture(params=["sandbox", "replay"])
async def qbo(request: pytest.FixtureRequest) -> AsyncIterator[QboClient]:
    if request.param == "replay":
        client = QboClient(
            base_url="https://qbo.test",
            token_url="https://qbo.test/oauth2/v1/tokens/bearer",
            realm_id="9341453050000000",
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
            token_store=MemoryTokenStore.from_refresh_token("rt"),
            transport=httpx.MockTransport(replay_qbo),
        )
        yield client
        await client.aclose()
        return
    async with running(QboState.seeded(NOW, matching=0)) as box, box.client() as client:
        yield client


async def test_invoice_records_carry_the_id_the_void_and_the_links(qbo: QboClient) -> None:
    records = {r.number or r.id: r for r in await qbo.find_invoice_records(NUMBERS)}
    assert sorted(records) == ["11265", "11267", "11270"]
    assert records["11267"].id == "6008" and records["11267"].balance == Decimal("90.00")
    voided = records["11270"]
    assert voided.voided and voided.total == 0 and voided.balance == 0
    assert not records["11265"].voided and records["11265"].linked == ()
    assert records["11267"].last_updated == NOW - timedelta(days=2)


async def test_deleted_invoices_are_absent_by_id(qbo: QboClient) -> None:
    found = await qbo.get_invoice_records(["1008", "1001", "not-an-id"])
    assert [(r.id, r.number) for r in found] == [("1001", "11260")]


async def test_payments_of_customers_with_what_they_are_applied_to(qbo: QboClient) -> None:
    payments = {p.reference or p.id: p for p in await qbo.list_payments_for(["63", "65", "62"])}
    by_hand = payments["CB-4471"]
    assert (by_hand.customer_id, by_hand.total, by_hand.unapplied) == (
        "63",
        Decimal("10.00"),
        Decimal("10.00"),
    )
    assert by_hand.applied == ()
    orphan = payments["CB-4502"]  # was on the deleted 11267: unapplied since
    assert orphan.unapplied == Decimal("30.00") and orphan.applied_to("1008") == 0
    history = payments["701005"]  # 11264, paid in QBO
    assert history.applied_to("1005") == Decimal("89.50") and history.unapplied == 0


async def test_credit_memos_with_their_remaining_credit(qbo: QboClient) -> None:
    memos = await qbo.list_credit_memos_for(["64", "63"])
    assert [(m.number, m.customer_id, m.total, m.remaining) for m in memos] == [
        ("CM-1042", "64", Decimal("20.00"), Decimal("20.00"))
    ]


async def test_payments_are_paged_and_customers_chunked() -> None:
    state = QboState.seeded(NOW, matching=0)
    for _ in range(1005):
        body = {"CustomerRef": {"value": "63"}, "TotalAmt": Decimal("1.00"), "Line": []}
        state.ledger.receive_payment(body, now=NOW)
    customers = ["63", *(str(1000 + i) for i in range(150))]
    async with running(state) as box, box.client() as qbo:
        payments = await qbo.list_payments_for(customers)
    assert sum(1 for p in payments if p.customer_id == "63") == 1006
    statements = [q for q in state.queries if "FROM Payment" in q]
    assert len(statements) == 3  # two chunks of customers, the first one two pages
    assert sum("STARTPOSITION 1001" in q for q in statements) == 1


# -- the portal's payments -----------------------------------------------------------
def _payment(**fields: Any) -> dict[str, Any]:
    body = {
        "id": "pay-11265-cb-4471",
        "invoice_number": "11265",
        "reference": "CB-4471",
        "amount": "10.00",
        "currency": "USD",
        "paid_at": "2026-11-26T17:00:00Z",
        "transfer_status": "failed",
        "transfer_error": "Duplicate reference: QuickBooks already has payment CB-4471 (Id 9471)",
        "transferred_at": "2026-11-28T17:00:00Z",
        "external_id": None,
        "invoice_external_id": "1006",
    }
    return {**body, **fields}


POSTED_11267 = _payment(
    id="pay-11267-cb-4502",
    invoice_number="11267",
    reference="CB-4502",
    amount="30.00",
    transfer_status="posted",
    transfer_error=None,
    external_id="9502",
    invoice_external_id="1008",
)
PORTAL_REPLAYS: dict[tuple[str, str], tuple[str, int, dict[str, Any]]] = {
    ("GET", "/invoices/11265/payments"): (
        "/invoices/{number}/payments",
        200,
        {"invoice_number": "11265", "payments": [_payment()]},
    ),
    ("GET", "/invoices/99999/payments"): (
        "/invoices/{number}/payments",
        404,
        {"error": {"code": "not_found", "message": "No invoice 99999."}},
    ),
    ("POST", "/payments/lookup"): (
        "/payments/lookup",
        200,
        {"payments": [_payment(), POSTED_11267], "missing": ["99999"]},
    ),
}


def replay_portal(request: httpx.Request) -> httpx.Response:
    path = request.url.raw_path.decode().removeprefix("/api/v1")
    _, status, body = PORTAL_REPLAYS[(request.method, path)]
    return httpx.Response(status, json=body)


def test_portal_replays_conform_to_the_document() -> None:
    for (method, url), (path, status, body) in PORTAL_REPLAYS.items():
        request = httpx.Request(method, f"http://portal/api/v1{url}")
        response = httpx.Response(status, json=body, request=request)
        response.elapsed = timedelta(0)
        SPEC[path][method].validate_response(response)


@pytest.fixture(params=["sandbox", "replay"])
async def portal(request: pytest.FixtureRequest) -> AsyncIterator[PortalClient]:
    key = SecretStr(DEFAULT_API_KEY)
    if request.param == "replay":
        client = PortalClient(
            base_url="http://portal.test", api_key=key, transport=httpx.MockTransport(replay_portal)
        )
        yield client
        await client.aclose()
        return
    async with running_world(matching=0) as world:
        client = PortalClient(base_url=world.portal_url, api_key=key)
        yield client
        await client.aclose()


async def test_a_failed_transfer_with_qbos_reason(portal: PortalClient) -> None:
    [payment] = await portal.list_invoice_payments("11265")
    assert (payment.reference, payment.amount, payment.status) == (
        "CB-4471",
        Decimal("10.00"),
        TransferStatus.FAILED,
    )
    assert payment.error is not None and payment.error.startswith("Duplicate reference")
    assert payment.external_id is None and payment.invoice_external_id == "1006"
    assert payment.transferred_at is not None and payment.paid_at.tzinfo is not None
    assert await portal.list_invoice_payments("99999") == []


async def test_payments_of_several_invoices_in_one_request(portal: PortalClient) -> None:
    found = await portal.get_invoice_payments(["11265", "11267", "99999"])
    assert sorted(found) == ["11265", "11267"]
    [posted] = found["11267"]
    assert posted.status is TransferStatus.POSTED and posted.external_id == "9502"
    assert posted.invoice_external_id == "1008"  # the invoice since deleted in QBO
    assert found["11265"][0].status is TransferStatus.FAILED
