"""Gathering evidence through the ports (batched, one round trip), and the check use case
with its diagnosis: one request a side (QuickBooks' batch, the portal's invoice with its
payments), one round trip in sync and, once the invoice's customer is known, explained too."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from pydantic import SecretStr

from sandbox.portal.connect import DEFAULT_API_KEY
from sandbox.portal.payments import transfer_pending
from services.adapters.portal import PortalClient
from services.adapters.qbo import QboClient
from services.causes import Cause
from services.check import check_invoice
from services.comparison import Verdict
from services.evidence import diagnose_comparisons, gather_evidence
from tests.portal_world import World, running_world
from tests.qbo_support import CLIENT_ID, CLIENT_SECRET, Sandbox

CAUSES = {
    "11265": Cause.PAYMENT_NOT_TRANSFERRED,
    "11266": Cause.CREDIT_NOT_APPLIED,
    "11267": Cause.INVOICE_RECREATED,
    "11270": Cause.INVOICE_VOIDED,
    "11260": Cause.STALE_COPY,
}


@dataclass
class Ports:
    world: World
    qbo: QboClient
    portal: PortalClient

    def qbo_queries(self) -> list[str]:
        return list(self.world.qbo.queries)

    def portal_requests(self) -> int:
        return sum(self.world.portal.requests.values())


@pytest.fixture
async def ports() -> AsyncIterator[Ports]:
    async with running_world(matching=40) as world:
        box = Sandbox(world.qbo, world.qbo_url, world.qbo.register_client(CLIENT_ID, CLIENT_SECRET))
        async with box.client() as qbo:
            portal = PortalClient(
                base_url=world.portal_url, api_key=SecretStr(DEFAULT_API_KEY), max_retries=0
            )
            yield Ports(world, qbo, portal)
            await portal.aclose()


async def compared(ports: Ports, *numbers: str) -> list:  # type: ignore[type-arg]
    return [
        await check_invoice(n, accounting=ports.qbo, portal=ports.portal, explain=False)
        for n in numbers
    ]


async def test_a_handful_of_invoices_costs_one_request_per_kind_of_evidence(
    ports: Ports,
) -> None:
    comparisons = await compared(ports, *CAUSES, "11003")  # 11003 is in sync: no reads
    queries, requests = len(ports.qbo_queries()), ports.portal_requests()
    diagnoses = await diagnose_comparisons(comparisons, accounting=ports.qbo, portal=ports.portal)
    assert {n: d.cause for n, d in diagnoses.items() if n in CAUSES} == CAUSES
    assert diagnoses["11003"].cause is Cause.IN_SYNC
    new = ports.qbo_queries()[queries:]
    assert sorted(q.split(" WHERE ")[0] for q in new) == [
        "SELECT * FROM CreditMemo",
        "SELECT * FROM Invoice",  # by number
        "SELECT * FROM Invoice",  # the portal's links that are not the invoice (11267)
        "SELECT * FROM Payment",
    ]
    assert ports.portal_requests() - requests == 1  # POST /payments/lookup


async def test_evidence_keeps_to_each_invoice(ports: Ports) -> None:
    comparisons = await compared(ports, "11265", "11267")
    found = await gather_evidence(comparisons, accounting=ports.qbo, portal=ports.portal)
    payment_refs = {n: {p.reference for p in e.payments} for n, e in found.items()}
    assert payment_refs == {"11265": {"CB-4471"}, "11267": {"CB-4502"}}
    assert found["11267"].link_checked and found["11267"].link_record is None
    assert [p.reference for p in found["11265"].portal_payments] == ["CB-4471"]
    assert found["11265"].gaps == ()


async def test_a_source_that_fails_is_a_gap_not_an_error(ports: Ports) -> None:
    [comparison] = await compared(ports, "11260")
    ports.world.portal.inject(503, path="/api/v1/payments/lookup")
    found = await gather_evidence([comparison], accounting=ports.qbo, portal=ports.portal)
    evidence = found["11260"]
    assert evidence.gathered and len(evidence.gaps) == 1
    assert evidence.gaps[0].startswith("portal payments (portal did not answer")
    [diagnosis] = (await diagnose_comparisons([comparison], accounting=ports.qbo,
                                              portal=ports.portal)).values()  # fmt: skip
    assert diagnosis.cause is Cause.STALE_COPY


async def test_check_in_sync_is_one_round_trip_and_out_of_sync_two(ports: Ports) -> None:
    await transfer_pending(ports.world.portal)  # the portal's payment run, done beforehand
    await check_invoice("11003", accounting=ports.qbo, portal=ports.portal)  # tokens, warm
    latency = 0.3
    ports.world.qbo.knobs.latency = latency
    ports.world.portal.latency = latency
    started = time.perf_counter()
    in_sync = await check_invoice("11003", accounting=ports.qbo, portal=ports.portal)
    one = time.perf_counter() - started
    started = time.perf_counter()
    stale = await check_invoice("11265", accounting=ports.qbo, portal=ports.portal)
    two = time.perf_counter() - started
    started = time.perf_counter()
    again = await check_invoice("11265", accounting=ports.qbo, portal=ports.portal)
    known = time.perf_counter() - started
    assert in_sync.verdict is Verdict.IN_SYNC and in_sync.diagnosis is None
    assert stale.diagnosis is not None and again.diagnosis is not None
    assert stale.diagnosis.cause is again.diagnosis.cause is Cause.PAYMENT_NOT_TRANSFERRED
    assert latency <= one < 1.8 * latency
    assert 2 * latency <= two < 2.8 * latency  # the customer's payments: a second trip
    assert latency <= known < 1.8 * latency  # the customer known: all in the first


async def test_an_explained_check_costs_one_request_a_side(ports: Ports) -> None:
    await check_invoice("11266", accounting=ports.qbo, portal=ports.portal)  # learns 11266
    ports.world.qbo.forget_requests()
    ports.world.portal.requests.clear()
    result = await check_invoice("11266", accounting=ports.qbo, portal=ports.portal)
    assert result.diagnosis is not None and result.diagnosis.cause is Cause.CREDIT_NOT_APPLIED
    realm = ports.world.qbo.realm_id
    assert dict(ports.world.qbo.request_counts) == {f"/v3/company/{realm}/batch": 1}
    assert sorted(q.split(" WHERE ")[0] for q in ports.qbo_queries()) == [
        "SELECT * FROM CreditMemo",
        "SELECT * FROM Invoice",
        "SELECT * FROM Payment",
    ]
    assert dict(ports.world.portal.requests) == {"GET /api/v1/invoices/11266": 1}


async def test_a_portal_without_embedded_payments_costs_two_requests_at_once(
    ports: Ports,
) -> None:
    ports.world.portal.embeds_payments = False  # a 1.1 portal: include=payments is a 422
    first = await check_invoice("11265", accounting=ports.qbo, portal=ports.portal)
    ports.world.portal.requests.clear()
    again = await check_invoice("11265", accounting=ports.qbo, portal=ports.portal)
    for result in (first, again):
        assert result.diagnosis is not None
        assert result.diagnosis.cause is Cause.PAYMENT_NOT_TRANSFERRED
    assert dict(ports.world.portal.requests) == {
        "GET /api/v1/invoices/11265": 1,
        "GET /api/v1/invoices/11265/payments": 1,
    }
    missing = await check_invoice("99999", accounting=ports.qbo, portal=ports.portal)
    assert missing.verdict is Verdict.NOT_FOUND


async def test_rounding_is_diagnosed_without_reads(ports: Ports) -> None:
    queries, requests = len(ports.qbo_queries()), ports.portal_requests()
    result = await check_invoice("11268", accounting=ports.qbo, portal=ports.portal)
    assert result.verdict is Verdict.ROUNDING and result.difference == Decimal("0.02")
    assert result.diagnosis is not None and result.diagnosis.cause is Cause.ROUNDING
    assert len(ports.qbo_queries()) - queries == 1
    assert ports.portal_requests() - requests == 2  # the invoice and the integrations
    strict = await check_invoice(
        "11268", accounting=ports.qbo, portal=ports.portal, tolerance=Decimal("0.01")
    )
    assert strict.verdict is Verdict.MISMATCH
