"""The digest scan over in-memory ports: the join, the look-ups, the recent window, failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import cast

import pytest

from services.digest import DigestFailed, Kind
from services.digest_scan import run_digest
from services.errors import TransientError
from services.models import AccountingInvoice, PortalInvoice
from services.ports import AccountingSystem, BillingPortal, Listed

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=5)


def acct(number: str, balance: str, *, updated: datetime = OLD) -> AccountingInvoice:
    return AccountingInvoice(
        id=number,
        number=number,
        customer_name=f"Customer {number}",
        total=Decimal("100.00"),
        balance=Decimal(balance),
        currency="USD",
        last_updated=updated,
    )


def mirror(number: str, balance: str, *, synced: datetime = OLD) -> PortalInvoice:
    return PortalInvoice(
        number=number,
        customer_name=f"Customer {number}",
        total=Decimal("100.00"),
        balance=Decimal(balance),
        currency="USD",
        status="open" if Decimal(balance) else "paid",
        integration_id="int-1",
        last_synced_at=synced,
    )


class Side:
    """One system in memory: pages of its open invoices, look-ups by number, a call log."""

    def __init__(self, invoices: Sequence[AccountingInvoice | PortalInvoice]) -> None:
        self.invoices = {i.number: i for i in invoices}
        self.lookups: list[list[str]] = []
        self.pages = 0
        self.fail_after: int | None = None
        self.cancelled = False

    async def iter_open_invoices(
        self, *, page_size: int = 1000
    ) -> AsyncIterator[list[tuple[str, Listed]]]:
        open_ = [_listed(i) for i in self.invoices.values() if i.balance > 0 and _is_open(i)]
        try:
            for start in range(0, len(open_), 2):  # pages of two: several pages per test
                if self.fail_after is not None and self.pages >= self.fail_after:
                    raise TransientError("no answer", system="fake")
                self.pages += 1
                await asyncio.sleep(0)
                yield open_[start : start + 2]
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def get_invoices(self, numbers: Sequence[str]) -> dict[str, object]:
        self.lookups.append(list(numbers))
        return {n: self.invoices[n] for n in numbers if n in self.invoices}


def _listed(invoice: AccountingInvoice | PortalInvoice) -> tuple[str, Listed]:
    """What the adapters' listings give of an invoice."""
    changed = (
        invoice.last_updated if isinstance(invoice, AccountingInvoice) else invoice.last_synced_at
    )
    return invoice.number, (invoice.balance, changed, invoice.customer_name, invoice.currency)


def _is_open(invoice: AccountingInvoice | PortalInvoice) -> bool:
    return not isinstance(invoice, PortalInvoice) or invoice.status == "open"


async def digest(qbo: Side, portal: Side, **kwargs: object):  # type: ignore[no-untyped-def]
    return await run_digest(
        accounting=cast(AccountingSystem, qbo),
        portal=cast(BillingPortal, portal),
        clock=lambda: NOW,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_each_kind_is_found_worst_first_and_nothing_else() -> None:
    qbo = Side(
        [
            acct("1", "50.00"),  # in sync
            acct("2", "50.00"),  # stale: portal 40
            acct("3", "250.00"),  # missing in the portal
            acct("4", "0.00"),  # paid in QBO, open in the portal
            acct("5", "75.00"),  # open in QBO, paid in the portal
        ]
    )
    portal = Side(
        [
            mirror("1", "50.00"),
            mirror("2", "40.00"),
            mirror("4", "89.50"),
            mirror("5", "0.00"),
            mirror("6", "30.00"),  # missing in QBO
        ]
    )
    result = await digest(qbo, portal)
    found = [(d.number, d.kind, d.amount) for d in result.discrepancies]
    assert found == [
        ("3", Kind.MISSING_IN_PORTAL, Decimal("250.00")),
        ("4", Kind.PAID_IN_ACCOUNTING, Decimal("89.50")),
        ("5", Kind.STALE_BALANCE, Decimal("75.00")),
        ("6", Kind.MISSING_IN_ACCOUNTING, Decimal("30.00")),
        ("2", Kind.STALE_BALANCE, Decimal("10.00")),
    ]
    assert result.amount_at_stake == Decimal("454.50")
    assert result.open_invoices == 6 and result.compared == 6 and result.skipped_recent == 0
    # Only the one-sided numbers were looked up, each on the other side.
    assert sorted(n for batch in portal.lookups for n in batch) == ["3", "5"]
    assert sorted(n for batch in qbo.lookups for n in batch) == ["4", "6"]
    assert (result.accounting.open, result.portal.open) == (4, 4)
    assert (result.accounting.found, result.portal.found) == (1, 1)
    four = result.discrepancies[1]
    assert four.accounting_balance == 0 and four.difference == Decimal("-89.50")
    assert not result.discrepancies[3].resync_can_fix


async def test_recently_changed_invoices_are_left_out_and_counted() -> None:
    recent = NOW - timedelta(minutes=3)
    qbo = Side(
        [
            acct("1", "50.00", updated=recent),  # mid-sync: the portal still says 40
            acct("2", "60.00"),
            acct("3", "70.00", updated=recent),  # only in QBO, and recent: not looked up
        ]
    )
    portal = Side(
        [
            mirror("1", "40.00"),
            mirror("2", "10.00", synced=recent),  # the portal just synced it
            mirror("4", "20.00", synced=recent),
        ]
    )
    result = await digest(qbo, portal)
    assert result.discrepancies == ()
    assert result.skipped_recent == 4 and result.compared == 0
    assert qbo.lookups == [] and portal.lookups == []
    wider = await digest(Side(list(qbo.invoices.values())), portal, recent=timedelta(minutes=1))
    assert {d.number for d in wider.discrepancies} == {"1", "2", "3", "4"}


async def test_differences_within_the_tolerance_are_counted_not_reported() -> None:
    qbo = Side([acct("1", "107.27"), acct("2", "50.00"), acct("3", "10.00")])
    portal = Side([mirror("1", "107.25"), mirror("2", "49.90"), mirror("3", "10.00")])
    result = await digest(qbo, portal, tolerance=Decimal("0.05"))
    assert [d.number for d in result.discrepancies] == ["2"]
    assert result.within_tolerance == 1 and result.compared == 3


async def test_a_side_that_cannot_finish_fails_the_scan_and_stops_the_other() -> None:
    qbo = Side([acct(str(n), "10.00") for n in range(20)])
    portal = Side([mirror(str(n), "10.00") for n in range(200)])
    qbo.fail_after = 2
    with pytest.raises(DigestFailed) as caught:
        await digest(qbo, portal)
    assert isinstance(caught.value.cause, TransientError)
    assert "could not finish" in caught.value.message
    assert portal.pages < 100 and portal.cancelled


async def test_a_failing_look_up_fails_the_scan() -> None:
    qbo = Side([acct("1", "10.00")])
    portal = Side([])

    async def broken(numbers: Sequence[str]) -> dict[str, object]:
        raise TransientError("look-up refused", system="portal")

    portal.get_invoices = broken  # type: ignore[method-assign]
    with pytest.raises(DigestFailed):
        await digest(qbo, portal)


class SlowSide(Side):
    """A side whose pages come slowly (QuickBooks held to its quota); it notes how many
    pages the other side had listed when each of its own pages arrived."""

    def __init__(self, invoices: Sequence[AccountingInvoice | PortalInvoice], other: Side) -> None:
        super().__init__(invoices)
        self.other = other
        self.leads: list[int] = []

    async def iter_open_invoices(
        self, *, page_size: int = 1000
    ) -> AsyncIterator[list[tuple[str, Listed]]]:
        async for page in super().iter_open_invoices(page_size=page_size):
            await asyncio.sleep(0.005)
            self.leads.append(self.other.pages - self.pages)
            yield page


@pytest.mark.parametrize("max_ahead", [6, 1000])
async def test_the_side_that_runs_ahead_waits_for_the_other(max_ahead: int) -> None:
    numbers = [str(n) for n in range(100, 160)]
    portal = Side([mirror(n, "10.00") for n in numbers])
    qbo = SlowSide([acct(n, "10.00") for n in numbers], portal)
    result = await digest(qbo, portal, max_ahead=max_ahead)
    assert result.discrepancies == () and result.compared == 60  # the same answer
    if max_ahead == 6:  # pages of two: at most 6 entries (3 pages) and one page more ahead
        assert max(qbo.leads) <= 4
    else:  # no cap in reach: the portal lists everything while QBO is on its first pages
        assert max(qbo.leads) >= 25


async def test_listings_in_opposite_orders_never_both_wait() -> None:
    numbers = [str(n) for n in range(100, 160)]
    portal = Side([mirror(n, "10.00") for n in numbers])
    qbo = Side([acct(n, "10.00") for n in reversed(numbers)])  # nothing pairs until halfway
    result = await asyncio.wait_for(digest(qbo, portal, max_ahead=6), 5)
    assert result.discrepancies == () and result.compared == 60
