"""The sandbox's mechanics behind the evidence: the fake QBO's Payment endpoint refuses what
QBO refuses, the portal's payment run keeps QBO's answer, and the seeded scenarios of every
cause come out of those mechanics with the balances they promise."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandbox.portal.payments import take_payment, transfer_pending
from sandbox.qbo.app import QboState
from sandbox.scenarios import BASIC_SCENARIOS, CAUSE_SCENARIOS, SCENARIOS
from tests.portal_world import World, running_world
from tests.qbo_support import NOW, Sandbox, running


@pytest.fixture
async def box() -> AsyncIterator[Sandbox]:
    async with running(QboState.seeded(NOW, matching=0)) as sandbox:
        yield sandbox


async def post_payment(box: Sandbox, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        token = await box.access_token(http)
        return await http.post(
            box.api("/payment"),
            params={"minorversion": "75"},
            content=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )


def payment(
    customer: str, amount: str, invoice_id: str | None, ref: str = "CB-1"
) -> dict[str, Any]:
    lines = []
    if invoice_id is not None:
        lines = [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}]
    return {"CustomerRef": {"value": customer}, "TotalAmt": amount, "PaymentRefNum": ref,
            "Line": lines}  # fmt: skip


def refusal(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 400, response.text
    error = response.json()["Fault"]["Error"][0]
    assert response.json()["Fault"]["type"] == "ValidationFault"
    return error["code"], error["Detail"]


async def test_a_payment_is_applied_and_shows_on_the_invoice(box: Sandbox) -> None:
    invoice = box.state.invoice("11260")
    response = await post_payment(box, payment("58", "15.00", invoice.id))
    assert response.status_code == 200, response.text
    created = response.json()["Payment"]
    assert created["PaymentRefNum"] == "CB-1" and created["UnappliedAmt"] == 0
    assert invoice.balance == Decimal("35.00") and invoice.sync_token == 2
    links = box.state.invoice_json("11260")["LinkedTxn"]
    assert {"TxnId": created["Id"], "TxnType": "Payment"} in links


@pytest.mark.parametrize(
    ("number", "customer", "amount", "code", "detail"),
    [
        ("11264", "62", "10.00", "6000", "Business Validation Error: Invoice already paid"),
        ("11270", "68", "10.00", "6000", "Business Validation Error: Invoice 11270 is void"),
        ("11260", "58", "60.00", "6000", "more than the open balance of invoice 11260"),
        ("11260", "99", "10.00", "6000", "Invoice 11260 belongs to another customer"),
        ("11265", "63", "10.00", "6140", "DocNumber=CB-4471 is assigned to TxnType=Payment"),
    ],
)
async def test_payments_qbo_refuses(
    box: Sandbox, number: str, customer: str, amount: str, code: str, detail: str
) -> None:
    invoice = box.state.invoice(number)
    before = (invoice.balance, invoice.sync_token)
    got = refusal(await post_payment(box, payment(customer, amount, invoice.id, ref="CB-4471")))
    assert got[0] == code and detail in got[1]
    assert (invoice.balance, invoice.sync_token) == before  # nothing changed


async def test_a_payment_on_a_deleted_invoice_is_object_not_found(box: Sandbox) -> None:
    assert refusal(await post_payment(box, payment("65", "5.00", "1008")))[0] == "610"


async def test_deleting_an_invoice_leaves_its_payment_unapplied(box: Sandbox) -> None:
    invoice = box.state.invoice("11260")
    created = (await post_payment(box, payment("58", "15.00", invoice.id))).json()["Payment"]
    box.state.delete_invoice("11260")
    assert box.state.ledger.payments[created["Id"]].unapplied == Decimal("15.00")


# -- the portal's payment run ---------------------------------------------------------
@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with running_world(matching=0) as w:
        yield w


async def test_the_seeded_transfer_fails_as_a_duplicate(world: World) -> None:
    [pending] = world.portal.pending_payments()
    assert pending.reference == "CB-4471"
    assert await transfer_pending(world.portal) == 1
    assert pending.transfer_status == "failed"
    assert pending.transfer_error == (
        "Duplicate reference: QuickBooks already has payment CB-4471 (Id 9471)"
    )
    assert await transfer_pending(world.portal) == 0  # tried once, not again


async def test_paying_an_invoice_already_paid_in_qbo_fails_to_post(world: World) -> None:
    paid = await take_payment(world.portal, "11264", Decimal("89.50"), reference="CB-5001")
    assert paid.transfer_status == "failed" and paid.transfer_error == "Invoice already paid"
    assert world.portal.invoices["11264"].balance == 0  # the portal counts it anyway


async def test_paying_an_open_invoice_posts_to_qbo(world: World) -> None:
    paid = await take_payment(world.portal, "11260", Decimal("10.00"), reference="CB-5002")
    assert paid.transfer_status == "posted" and paid.external_id is not None
    assert world.qbo.invoice("11260").balance == Decimal("40.00")
    assert world.portal.invoices["11260"].balance == Decimal("30.00")  # was stale at 40


async def test_a_run_that_cannot_reach_qbo_leaves_payments_pending(world: World) -> None:
    world.qbo.revoke("sandbox-portal")
    assert await transfer_pending(world.portal) == 1
    [pending] = world.portal.pending_payments()
    assert pending.transfer_status == "pending" and pending.transfer_error is None


# -- the seeded scenarios --------------------------------------------------------------
def test_every_scenario_has_the_balances_it_promises_on_both_sides() -> None:
    from sandbox.portal.state import PortalState

    qbo = QboState.seeded(NOW, matching=0)
    portal = PortalState.seeded(
        NOW,
        qbo_base_url="http://qbo.invalid",
        qbo_token_url="http://qbo.invalid/token",
        qbo_realm_id=qbo.realm_id,
        qbo_client_id="c",
        qbo_client_secret="s",
        qbo_refresh_token="r",
        matching=0,
    )
    for s in SCENARIOS:
        assert s.cause, s.number
        if s.qbo_balance is not None:
            assert qbo.invoice(s.number).balance == s.qbo_balance, s.number
        if s.portal_balance is not None:
            assert portal.invoices[s.number].balance == s.portal_balance, s.number
    assert {s.cause for s in CAUSE_SCENARIOS} >= {
        "payment_not_transferred",
        "credit_not_applied",
        "invoice_recreated",
        "invoice_voided",
        "rounding",
        "unknown",
    }
    assert qbo.invoice("11270").voided and qbo.invoice_json("11270")["PrivateNote"] == "Voided"
    assert [inv.doc_number for inv in QboState.seeded(NOW, matching=0, causes=False)
            .invoices.all_by_id()] == [s.number for s in BASIC_SCENARIOS]  # fmt: skip
