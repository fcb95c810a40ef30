"""The incremental digest answers what a full scan answers, on the same world, after
changes on both sides (QuickBooks edits and hand-entered payments, portal payments, a
resync that fixes an earlier discrepancy), reading only what changed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sandbox.portal.payments import take_payment
from sandbox.portal.sync import _resync_invoice
from sandbox.qbo.cdc import change_invoice_amount, record_payment_by_hand
from services.digest_incremental import run_incremental_digest
from services.digest_scan import run_digest
from services.models import utcnow
from tests.integration.test_digest_sandbox import TOLERANCE, digest_world

OVERLAP = timedelta(minutes=1)


async def test_the_incremental_digest_equals_a_full_scan(tmp_path: Path) -> None:
    async with digest_world(tmp_path, utcnow()) as (world, container):
        accounting, portal = container.accounting, container.portal
        ports = {"accounting": accounting, "portal": portal, "tolerance": TOLERANCE}
        first = await run_digest(**ports, recent=timedelta(0))
        assert {"11260", "11264"} <= set(first.carried)
        change_invoice_amount(world.qbo, "11003", Decimal("99.00"))  # stale in the portal
        record_payment_by_hand(world.qbo, "11004", Decimal("10.00"))  # paid by hand in QBO
        await take_payment(world.portal, "11005", Decimal("5.00"), reference="CB-1")
        await take_payment(world.portal, "11006", Decimal("7.00"), reference="CB-2")
        await _resync_invoice(world.portal, "11260")  # an earlier discrepancy fixed
        full = await run_digest(**ports, recent=timedelta(0))
        incremental = await run_incremental_digest(
            **ports,
            since=first.started_at - OVERLAP,
            carried=first.carried,
            open_invoices=first.open_invoices,
            recent=timedelta(0),
        )
        forgetful = await run_incremental_digest(
            **ports, since=first.started_at - OVERLAP, carried=(), open_invoices=0,
            recent=timedelta(0),
        )  # fmt: skip
    assert "11261" not in {d.number for d in forgetful.discrepancies}  # unchanged: not read
    assert incremental.discrepancies == full.discrepancies
    found = {d.number for d in full.discrepancies}
    assert {"11003", "11004"} <= found and "11260" not in found
    assert found != {d.number for d in first.discrepancies}  # the world did change
    assert incremental.incremental and incremental.reread < full.open_invoices / 2
