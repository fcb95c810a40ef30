"""QuickBooks Online writes: the adapter against the fake QBO over loopback HTTP.

A payment applied by a sparse update at its SyncToken, a credit memo applied by a $0
payment, a stale SyncToken refused (5010), a closed period refused, and ``requestid``: the
same id never writes twice.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
import pytest_asyncio

from sandbox.qbo.app import QboState
from services.adapters.qbo import QboClient
from services.errors import ClosedPeriodError, StaleObjectError, ValidationFault
from services.models import AccountingPayment, CreditMemo
from tests.qbo_support import NOW, Sandbox, Server, server

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def qbo_server() -> AsyncIterator[Server]:
    async with server() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def world(qbo_server: Server) -> AsyncIterator[tuple[Sandbox, QboClient]]:
    sandbox = qbo_server.plug(QboState.seeded(NOW, matching=0))
    client = sandbox.client()
    yield sandbox, client
    await client.aclose()


async def _payment(client: QboClient, customer: str, reference: str) -> AccountingPayment:
    found = [p for p in await client.list_payments_for([customer]) if p.reference == reference]
    assert len(found) == 1
    return found[0]


async def _memo(client: QboClient, customer: str, number: str) -> CreditMemo:
    found = [m for m in await client.list_credit_memos_for([customer]) if m.number == number]
    assert len(found) == 1
    return found[0]


async def test_payment_applied_by_sparse_update_once_per_requestid(
    world: tuple[Sandbox, QboClient],
) -> None:
    sandbox, client = world
    invoice = sandbox.state.invoice("11265")
    payment = await _payment(client, invoice.customer_id, "CB-4471")
    assert payment.unapplied == Decimal("10.00") and payment.sync_token is not None

    written = await client.apply_payment(
        payment, invoice_id=invoice.id, amount=Decimal("10.00"), request_id="fix-1-write"
    )
    again = await client.apply_payment(
        payment, invoice_id=invoice.id, amount=Decimal("10.00"), request_id="fix-1-write"
    )

    # the first answer, replayed; each answer has its own intuit_tid (for the audit log)
    assert written.model_copy(update={"intuit_tid": None}) == again.model_copy(
        update={"intuit_tid": None}
    )
    assert re.fullmatch(r"1-[0-9a-f]{8}-[0-9a-f]{24}", written.intuit_tid or "")
    assert again.intuit_tid and again.intuit_tid != written.intuit_tid
    assert written.txn_id == payment.id and written.unapplied == Decimal(0)
    assert written.sync_token == str(int(payment.sync_token) + 1)
    assert len(sandbox.state.writes) == 1
    assert sandbox.state.invoice("11265").balance == Decimal("40.00")
    after = await _payment(client, invoice.customer_id, "CB-4471")
    assert after.unapplied == 0 and after.applied_to(invoice.id) == Decimal("10.00")


async def test_a_stale_sync_token_is_refused_and_changes_nothing(
    world: tuple[Sandbox, QboClient],
) -> None:
    sandbox, client = world
    invoice = sandbox.state.invoice("11265")
    payment = await _payment(client, invoice.customer_id, "CB-4471")
    sandbox.state.ledger.payments[payment.id].sync_token += 1  # someone else saved it

    with pytest.raises(StaleObjectError) as refused:
        await client.apply_payment(
            payment, invoice_id=invoice.id, amount=Decimal("10.00"), request_id="fix-2-write"
        )

    assert refused.value.code == "5010" and refused.value.status == 400
    assert sandbox.state.invoice("11265").balance == Decimal("50.00")
    assert sandbox.state.writes == []


async def test_credit_memo_applied_by_a_zero_payment(world: tuple[Sandbox, QboClient]) -> None:
    sandbox, client = world
    invoice = sandbox.state.invoice("11266")
    memo = await _memo(client, invoice.customer_id, "CM-1042")

    written = await client.apply_credit_memo(
        memo, invoice_id=invoice.id, amount=Decimal("20.00"), request_id="fix-3-write"
    )

    assert written.txn_type == "Payment" and written.unapplied == Decimal(0)
    assert sandbox.state.invoice("11266").balance == Decimal("100.00")
    assert (await _memo(client, invoice.customer_id, "CM-1042")).remaining == Decimal(0)
    with pytest.raises(ValidationFault):  # no credit left: refused, nothing written
        await client.apply_credit_memo(
            memo, invoice_id=invoice.id, amount=Decimal("20.00"), request_id="fix-4-write"
        )
    assert sandbox.state.invoice("11266").balance == Decimal("100.00")


async def test_a_closed_period_is_refused(world: tuple[Sandbox, QboClient]) -> None:
    sandbox, client = world
    invoice = sandbox.state.invoice("11265")
    payment = await _payment(client, invoice.customer_id, "CB-4471")
    sandbox.state.knobs.closed_through = (NOW + timedelta(days=1)).date()

    with pytest.raises(ClosedPeriodError):
        await client.apply_payment(
            payment, invoice_id=invoice.id, amount=Decimal("10.00"), request_id="fix-5-write"
        )
    assert sandbox.state.invoice("11265").balance == Decimal("50.00")


async def test_more_than_the_invoice_owes_is_refused(world: tuple[Sandbox, QboClient]) -> None:
    sandbox, client = world
    invoice = sandbox.state.invoice("11265")
    payment = await _payment(client, invoice.customer_id, "CB-4471")
    with pytest.raises(ValidationFault):
        await client.apply_payment(
            payment, invoice_id=invoice.id, amount=Decimal("60.00"), request_id="fix-6-write"
        )
    assert sandbox.state.invoice("11265").balance == Decimal("50.00")
    assert (await _payment(client, invoice.customer_id, "CB-4471")).unapplied == Decimal("10.00")
