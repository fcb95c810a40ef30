"""The digest over the real adapters and the sandbox servers (loopback HTTP): exactly the
seeded discrepancies, the same answer under injected 429s and 5xx, and no answer at all
(a failure) when a side cannot be read."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import JSONResponse

from bot.bootstrap import Container, bootstrap
from bot.demo import SandboxWorld, sandbox_world
from bot.flows.digest import scan
from sandbox.portal.wire import invoice_json, invoice_page_body
from sandbox.qbo.app import FaultKind, QboState
from sandbox.qbo.wire import dumps
from sandbox.scale import ScaleSpec, portal_state, qbo_state
from sandbox.scenarios import seed_invoices
from services.digest import DigestFailed, DigestResult, Kind
from services.models import utcnow

QUICK_RETRIES: dict[str, Any] = {
    "qbo_max_retries": 6,
    "qbo_retry_backoff_seconds": 0.005,
    "qbo_max_retry_wait_seconds": 0.02,
    "portal_max_retries": 6,
    "portal_retry_backoff_seconds": 0.005,
    "portal_max_retry_wait_seconds": 0.02,
}
LIST = "/api/v1/invoices"
LOOKUP = "/api/v1/invoices/lookup"


@asynccontextmanager
async def digest_world(
    tmp_path: Path, now: datetime, *, matching: int | None = None, **settings: Any
) -> AsyncIterator[tuple[SandboxWorld, Container]]:
    async with sandbox_world(now=now, matching=matching) as world:
        options = {**QUICK_RETRIES, **settings}
        container = await bootstrap(
            world.bot_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/b.db", **options)
        )
        try:
            yield world, container
        finally:
            await container.aclose()


TOLERANCE = Decimal("0.05")  # MONEY_TOLERANCE's default


def seeded_discrepancies(now: datetime, matching: int | None = None) -> dict[str, Kind]:
    """What the scenario table says differs, by kind (invoices open on at least one side;
    differences within the rounding tolerance left out)."""
    found: dict[str, Kind] = {}
    rows = seed_invoices(now) if matching is None else seed_invoices(now, matching=matching)
    for row in rows:
        qbo, portal = row.qbo_balance, row.portal_balance
        if not qbo and not portal:
            continue
        if qbo is not None and portal is not None and abs(qbo - portal) <= TOLERANCE:
            continue
        if portal is None:
            found[row.number] = Kind.MISSING_IN_PORTAL
        elif qbo is None:
            found[row.number] = Kind.MISSING_IN_ACCOUNTING
        elif qbo == 0:
            found[row.number] = Kind.PAID_IN_ACCOUNTING
        else:
            found[row.number] = Kind.STALE_BALANCE
    return found


def kinds(result: DigestResult) -> dict[str, Kind]:
    return {d.number: d.kind for d in result.discrepancies}


async def test_the_seeded_sandbox_gives_exactly_its_discrepancies(tmp_path: Path) -> None:
    now = utcnow()
    async with digest_world(tmp_path, now) as (world, container):
        result = await scan(container)
    found = kinds(result)
    assert {n: found.get(n) for n in ("11260", "11261", "11262", "11263", "11264")} == {
        "11260": Kind.STALE_BALANCE,
        "11261": Kind.STALE_BALANCE,
        "11262": Kind.STALE_BALANCE,
        "11263": Kind.MISSING_IN_PORTAL,
        "11264": Kind.PAID_IN_ACCOUNTING,
    }
    assert found == seeded_discrepancies(now)  # and nothing else
    by_number = {d.number: d for d in result.discrepancies}
    assert by_number["11260"].accounting_balance == Decimal("50.00")
    assert by_number["11260"].portal_balance == Decimal("40.00")
    assert by_number["11260"].customer == "Best Tackle"
    assert by_number["11264"].portal_balance == Decimal("89.50")
    amounts = [d.amount for d in result.discrepancies]
    assert amounts == sorted(amounts, reverse=True)
    assert result.skipped_recent == 0
    differences = [
        abs(r.qbo_balance - r.portal_balance)
        for r in seed_invoices(now)
        if r.qbo_balance is not None and r.portal_balance is not None
    ]
    assert result.within_tolerance == sum(1 for d in differences if 0 < d <= TOLERANCE) >= 1
    assert result.compared == result.open_invoices >= 300
    assert result.accounting.pages == 1 and result.portal.pages == 1
    # One page a side, one count, one look-up a side: nothing per invoice.
    assert world.portal.request_count("GET", LIST) == 1
    assert world.portal.request_count("POST", LOOKUP) == 1
    assert sum(1 for q in world.qbo.queries if " IN (" in q) == 1


async def test_the_same_answer_when_a_fifth_of_the_requests_fail(tmp_path: Path) -> None:
    now = utcnow()
    async with digest_world(tmp_path, now, matching=2600) as (world, container):
        calm = await scan(container)
        world.qbo.knobs.fault_kinds = (FaultKind.THROTTLE, FaultKind.SERVER_ERROR)
        world.qbo.knobs.fault_rate = 0.2
        world.qbo.reseed(4)
        for status, path in ((500, LIST), (429, LIST), (500, LOOKUP), (429, LOOKUP)):
            world.portal.inject(status, path=path)
        served_before = len(world.qbo.queries)
        sent_before = sum(world.qbo.request_counts.values())
        stormy = await scan(container)
        faulted = (sum(world.qbo.request_counts.values()) - sent_before) - (
            len(world.qbo.queries) - served_before
        )
    assert faulted > 0 and not world.portal.faults  # faults happened, on both sides
    assert calm.accounting.pages == 3 and calm.discrepancies
    assert stormy.discrepancies == calm.discrepancies
    assert (stormy.open_invoices, stormy.compared) == (calm.open_invoices, calm.compared)
    assert kinds(stormy) == seeded_discrepancies(now, matching=2600)


async def test_a_scan_that_cannot_finish_fails_instead_of_answering(tmp_path: Path) -> None:
    async with digest_world(tmp_path, utcnow(), qbo_max_retries=2) as (world, container):
        world.qbo.knobs.fault_kinds = (FaultKind.SERVER_ERROR,)
        world.qbo.knobs.fault_rate = 1.0
        with pytest.raises(DigestFailed) as caught:
            await scan(container)
        assert caught.value.cause.system == "QuickBooks Online"
        world.qbo.knobs.fault_rate = 0.0
        world.portal.inject(503, count=10, path=LOOKUP)
        with pytest.raises(DigestFailed) as caught:
            await scan(container)
        assert caught.value.cause.system == "portal"


# The scale sandbox's fakes write their pages directly (a page of 1000 in a few ms): the
# bytes must be those the general rendering writes, for every shape of invoice.
def test_a_qbo_invoice_written_directly_is_what_dumps_writes() -> None:
    now = utcnow()
    worlds = (QboState.seeded(now), qbo_state(ScaleSpec(open_invoices=300), now))
    odd: list[dict[str, Any]] = [
        {"voided": True},
        {"currency": None},
        {"doc_number": ""},
        {"links": [("55", "Payment", Decimal("1.00")), ("56", "CreditMemo", Decimal("2"))]},
        {"extra": {"Balance": Decimal("3"), "New": [1]}},
        {"customer_name": 'Zoë "Q" \\ Ltd\n'},
        {"balance": Decimal("0"), "email_status": "NotSet", "sync_token": 12},
    ]
    checked = 0
    for state in worlds:
        for invoice in state.invoices.all_by_id():
            for variant in (invoice, *(dataclasses.replace(invoice, **o) for o in odd)):
                assert variant.to_json(state.tz) == dumps(variant.to_intuit(state.tz))
                checked += 1
    assert checked > 2000


def test_a_portal_page_written_directly_is_what_json_response_writes() -> None:
    state = portal_state(ScaleSpec(open_invoices=300), utcnow())
    invoices = list(state.invoices.values())
    odd = dataclasses.replace(
        invoices[0], external_id=None, customer_id=None, currency=None, last_synced_at=None,
        customer_name='Zoë "Q" \\\n\u2028', balance=Decimal("1.005"), status="paid",
    )  # fmt: skip
    for page, cursor in (
        (invoices, None),
        (invoices[:100], "bjoxMDAwMTAw"),
        ([], None),
        ([odd], "c"),
    ):
        expected = JSONResponse(
            {"invoices": [invoice_json(i) for i in page], "next_cursor": cursor}
        )
        assert invoice_page_body(page, cursor) == expected.body
