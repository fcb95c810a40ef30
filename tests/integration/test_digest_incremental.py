"""The incremental digest answers what a full scan answers, on the same world, after
changes on both sides (QuickBooks edits and hand-entered payments, portal payments, a
resync that fixes an earlier discrepancy), reading only what changed."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.flows.digest import scan
from sandbox.portal.payments import take_payment
from sandbox.portal.sync import _resync_invoice
from sandbox.qbo.cdc import change_invoice_amount, record_payment_by_hand
from services.digest import DigestResult, Trigger
from services.digest_incremental import run_incremental_digest
from services.digest_scan import run_digest
from services.models import utcnow
from services.storage.watch import WatchStore
from services.watch_events import ChangeEvent
from tests.integration.test_digest_sandbox import TOLERANCE, digest_world

OVERLAP = timedelta(minutes=1)


async def test_the_incremental_digest_equals_a_full_scan(tmp_path: Path) -> None:
    async with digest_world(tmp_path, utcnow()) as (world, container):
        accounting, portal = container.accounting, container.portal
        ports: dict[str, Any] = {
            "accounting": accounting, "portal": portal, "tolerance": TOLERANCE
        }  # fmt: skip
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
            known=first.accounting_kept,  # QuickBooks' side, not read again unless changed
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


class Watch:
    """Stands for the running QuickBooks watch: its catch-up is counted."""

    def __init__(self) -> None:
        self.catch_ups = 0

    async def catch_up(self, why: str) -> int:
        self.catch_ups += 1
        return 0


async def test_the_digest_goes_incremental_with_the_watch_and_full_when_the_chain_breaks(
    tmp_path: Path,
) -> None:
    async with digest_world(tmp_path, utcnow(), digest_recent_minutes=0) as (world, deps):

        async def digest() -> DigestResult:
            run = await deps.digests.start(trigger=Trigger.COMMAND, channel="C1")
            result = await scan(deps)
            await deps.digests.finish(run_id=run.id, result=result)
            return result

        assert not (await digest()).incremental  # no watch: in full
        deps.watch, deps.watcher = Watch(), asyncio.create_task(asyncio.sleep(3600))
        change_invoice_amount(world.qbo, "11003", Decimal("99.00"))
        second = await digest()
        assert second.incremental and deps.watch.catch_ups == 1
        assert "11003" in {d.number for d in second.discrepancies}
        deleted = ChangeEvent(
            id="e1", realm_id=world.qbo.realm_id, entity="Invoice", entity_id="1003",
            operation="delete", occurred_at=utcnow(),
        )  # fmt: skip
        await WatchStore(deps.db).store_events(events=[deleted], now=utcnow())
        third = await digest()
        assert not third.incremental  # a deleted invoice no query lists: in full
        assert third.discrepancies == second.discrepancies
        assert (await digest()).incremental  # the chain holds again from the full scan
        deps.settings = deps.settings.model_copy(update={"digest_full_every": 0})
        assert not (await digest()).incremental
