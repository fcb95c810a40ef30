"""The sandbox portal's syncs really pull from the fake QuickBooks Online over HTTP:
what changed in QBO on or after the sync date is mirrored, the rest is not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from pydantic import SecretStr

from sandbox.portal.connect import DEFAULT_API_KEY
from sandbox.scenarios import INTEGRATION_ID
from services.adapters.portal import PortalClient
from services.models import RecordResync, RecordType, SyncRun, SyncStatus
from tests.portal_world import CLIENT_ID, World, running_world


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with running_world(sync_duration=0.1, record_resync_seconds=0.05) as world:
        yield world


@pytest.fixture
async def portal(world: World) -> AsyncIterator[PortalClient]:
    client = PortalClient(base_url=world.portal_url, api_key=SecretStr(DEFAULT_API_KEY))
    yield client
    await client.aclose()


async def full_sync(portal: PortalClient, sync_from: date) -> SyncRun:
    run = await portal.start_sync(INTEGRATION_ID, sync_from=sync_from)
    async with asyncio.timeout(10):
        while not run.status.finished:
            await asyncio.sleep(0.02)
            run = await portal.get_sync_run(run.id)
    return run


async def record_resync(portal: PortalClient, record_type: RecordType, ident: str) -> RecordResync:
    resync = await portal.resync_record(record_type, ident)
    async with asyncio.timeout(10):
        while not resync.status.finished:
            await asyncio.sleep(0.02)
            resync = await portal.get_record_resync(resync.id)
    return resync


async def balance(portal: PortalClient, number: str) -> Decimal | None:
    invoice = await portal.get_invoice(number)
    return None if invoice is None else invoice.balance


async def test_a_sync_picks_up_what_changed_since_its_date_and_nothing_older(
    world: World, portal: PortalClient
) -> None:
    changed_at = world.now - timedelta(days=2)
    world.qbo.update_invoice("11010", balance=Decimal("12.34"), when=changed_at)
    before = await balance(portal, "11010")
    assert before is not None and before != Decimal("12.34")

    later = await full_sync(portal, changed_at.date() + timedelta(days=1))
    assert later.status is SyncStatus.COMPLETED
    assert "11010" not in {r.number for r in await portal.list_processed_records(later.id)}
    assert await balance(portal, "11010") == before

    earlier = await full_sync(portal, changed_at.date())
    records = await portal.list_processed_records(earlier.id)
    [record] = [r for r in records if r.number == "11010"]
    assert record.record_type is RecordType.INVOICE and record.action == "updated"
    assert (record.balance_before, record.balance_after) == (before, Decimal("12.34"))
    assert await balance(portal, "11010") == Decimal("12.34")
    assert any(r.record_type is RecordType.COMPANY for r in records)
    # The query went to QBO over HTTP in its own language.
    assert f"MetaData.LastUpdatedTime >= '{changed_at.date()}T00:00:00Z'" in world.qbo.queries[-1]


async def test_a_sync_runs_queued_then_running_then_completed(
    world: World, portal: PortalClient
) -> None:
    world.portal.sync_duration = 0.4
    started = await portal.start_sync(INTEGRATION_ID, sync_from=world.now.date())
    assert started.status is SyncStatus.QUEUED and started.started_at is None
    await asyncio.sleep(0.15)
    assert (await portal.get_sync_run(started.id)).status is SyncStatus.RUNNING
    run = started
    async with asyncio.timeout(5):
        while not run.status.finished:
            await asyncio.sleep(0.02)
            run = await portal.get_sync_run(started.id)
    assert run.status is SyncStatus.COMPLETED and run.finished_at and run.started_at
    assert (run.finished_at - run.created_at).total_seconds() >= 0.35
    integration = await portal.get_integration(INTEGRATION_ID)
    assert integration.last_successful_sync_at == run.finished_at
    history = await portal.list_sync_runs(INTEGRATION_ID)
    assert history[0].id == run.id


async def test_the_bots_sync_date_catches_an_invoice_a_one_day_sync_misses(
    world: World, portal: PortalClient
) -> None:
    one_day = await full_sync(portal, world.now.date() - timedelta(days=1))
    assert "11262" not in {r.number for r in await portal.list_processed_records(one_day.id)}
    assert await balance(portal, "11262") == Decimal("60.00")
    # The day before the invoice's last modification in QBO (three days ago).
    since = (world.now - timedelta(days=3)).date() - timedelta(days=1)
    await full_sync(portal, since)
    assert await balance(portal, "11262") == Decimal("75.00")


async def test_record_resync_fixes_a_stale_copy(world: World, portal: PortalClient) -> None:
    link = world.portal.invoices["11260"].external_id
    resync = await record_resync(portal, RecordType.INVOICE, "11260")
    assert resync.status is SyncStatus.COMPLETED and resync.error is None
    assert await balance(portal, "11260") == Decimal("50.00")
    # It read that one invoice from QBO by its link.
    assert world.qbo.request_counts[f"/v3/company/{world.qbo.realm_id}/invoice/{link}"] == 1


async def test_stale_link_fails_the_record_resync_and_a_full_sync_fixes_it(
    world: World, portal: PortalClient
) -> None:
    stale = await portal.get_invoice("11261")
    assert stale is not None and stale.balance == Decimal("100.00")
    resync = await record_resync(portal, RecordType.INVOICE, "11261")
    assert resync.status is SyncStatus.FAILED
    assert resync.error is not None and "Object Not Found" in resync.error and "610" in resync.error
    assert await balance(portal, "11261") == Decimal("100.00")

    run = await full_sync(portal, world.now.date() - timedelta(days=1))
    assert run.status is SyncStatus.COMPLETED
    fixed = await portal.get_invoice("11261")
    assert fixed is not None and fixed.balance == Decimal("120.00")
    assert fixed.external_id == world.qbo.invoice("11261").id != stale.external_id
    # Relinked: the record resync works from now on.
    assert (await record_resync(portal, RecordType.INVOICE, "11261")).error is None


async def test_an_invoice_missing_from_the_portal_is_created(
    world: World, portal: PortalClient
) -> None:
    assert await portal.get_invoice("11263") is None
    resync = await record_resync(portal, RecordType.INVOICE, "11263")
    assert resync.status is SyncStatus.COMPLETED
    created = await portal.get_invoice("11263")
    assert created is not None and created.balance == Decimal("250.00")
    assert created.customer_name == "Freeman Sporting Goods"
    assert created.external_id == world.qbo.invoice("11263").id
    # Unknown to QBO as well: the resync fails and says so.
    unknown = await record_resync(portal, RecordType.INVOICE, "55555")
    assert unknown.status is SyncStatus.FAILED and "55555" in (unknown.error or "")


async def test_a_full_sync_creates_missing_invoices_and_marks_paid_ones(
    world: World, portal: PortalClient
) -> None:
    run = await full_sync(portal, world.now.date() - timedelta(days=2))
    records = {r.number: r for r in await portal.list_processed_records(run.id)}
    assert records["11263"].action == "created" and records["11263"].balance_before is None
    assert records["61"].record_type is RecordType.COMPANY and records["61"].action == "created"
    paid = await portal.get_invoice("11264")
    assert paid is not None and paid.balance == Decimal("0.00") and paid.status == "paid"


async def test_company_and_contact_resyncs(world: World, portal: PortalClient) -> None:
    assert (await record_resync(portal, RecordType.COMPANY, "58")).status is SyncStatus.COMPLETED
    assert (await record_resync(portal, RecordType.CONTACT, "58")).status is SyncStatus.COMPLETED
    missing = await record_resync(portal, RecordType.COMPANY, "9999")
    assert missing.status is SyncStatus.FAILED and "9999" in (missing.error or "")


async def test_qbo_failures_fail_the_run_with_the_reason(
    world: World, portal: PortalClient
) -> None:
    world.qbo.revoke(CLIENT_ID)
    run = await full_sync(portal, world.now.date())
    assert run.status is SyncStatus.FAILED and "invalid_grant" in (run.error or "")
    integration = await portal.get_integration(INTEGRATION_ID)
    assert integration.last_successful_sync_at is not None
    assert integration.last_successful_sync_at < run.finished_at  # type: ignore[operator]


async def test_the_rotated_refresh_token_is_kept_and_expired_access_renewed(
    world: World, portal: PortalClient
) -> None:
    first_token = world.portal.qbo.refresh_token
    await full_sync(portal, world.now.date())
    assert world.portal.qbo.refresh_token != first_token
    world.qbo.expire_access_tokens()
    run = await full_sync(portal, world.now.date() - timedelta(days=1))
    assert run.status is SyncStatus.COMPLETED
    assert world.qbo.oauth.refresh_count == 2


async def test_qbo_server_errors_are_retried(world: World, portal: PortalClient) -> None:
    world.qbo.inject("500", "503")
    run = await full_sync(portal, world.now.date() - timedelta(days=1))
    assert run.status is SyncStatus.COMPLETED and run.records_processed > 0


async def test_a_sync_pages_through_more_than_a_thousand_invoices() -> None:
    async with running_world(matching=1300, sync_duration=0.05) as world:
        portal = PortalClient(base_url=world.portal_url, api_key=SecretStr(DEFAULT_API_KEY))
        run = await full_sync(portal, date(2000, 1, 1))
        await portal.aclose()
    invoices = [r for r in world.portal.runs[run.id].records if r.record_type == "invoice"]
    assert len(invoices) == len(world.qbo.invoices) > 1000
    pages = [q for q in world.qbo.queries if "STARTPOSITION" in q]
    assert [p.split("STARTPOSITION ")[1] for p in pages] == [
        "1 MAXRESULTS 1000",
        "1001 MAXRESULTS 1000",
    ]
