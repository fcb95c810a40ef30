"""The digest scan: every invoice open on either side compared, at the speed the APIs allow.

1. Both sides list their open invoices at the same time, in pages of 1000. The adapters
   read only what the join needs from their answers: each invoice arrives as a compact
   ``Entry`` (balance, last change, customer, currency), never as a full model. The join is
   keyed by number and streaming: when the other side has already listed the number, the
   pair is compared at once and both entries are let go, so memory holds only the invoices
   one side has listed and the other has not (yet).
2. What is left is open on one side only. Those numbers are looked up on the other side in
   batches (``get_invoices``): that catches an invoice paid in QuickBooks but open in the
   portal, and one missing from either side.
3. Invoices changed in the recent window on either side (QBO's last update, the portal's
   last sync) are left out as possibly mid-sync, and counted.

Any ``UpstreamError`` left after the adapters' own retries fails the whole scan
(``DigestFailed``): a partial result is never returned as if complete.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

from services.digest import DigestFailed, DigestResult, Discrepancy, SideStats, worst_first
from services.errors import UpstreamError
from services.models import AccountingInvoice, PortalInvoice, utcnow
from services.ports import AccountingSystem, BillingPortal, Listed

PAGE_SIZE = 1000
LOOKUP_CHUNK = 10_000
"""Numbers handed to one ``get_invoices`` call (the adapters batch them further), so the
invoices found are held a chunk at a time."""
RECENT = timedelta(minutes=10)
MAX_AHEAD = 50_000
"""Entries one side's listing may hold waiting for the other side before it pauses. The
portal lists ~1000 invoices in 60 ms while QuickBooks allows 500 pages a minute: without a
cap, a million-invoice scan would hold ~400k portal entries waiting for QuickBooks. Each
entry waiting costs ~330 bytes (50,000: ~16 MB). Only the side ahead waits, and 50,000 is
still 50 of the portal's pages (three seconds of its listing) ahead of QuickBooks'."""

T = TypeVar("T")
U = TypeVar("U")


Entry = Listed
"""One side's view of an open invoice, all the digest keeps of it: (balance, last change,
customer, currency). A plain tuple of immutable values: the garbage collector stops
tracking it, so the entries waiting for their other side cost it nothing to walk."""
BALANCE: Final = 0
CHANGED: Final = 1
CUSTOMER: Final = 2
CURRENCY: Final = 3


class Join:
    """The keyed, streaming join of both listings. Pure and synchronous."""

    def __init__(self, *, cutoff: datetime, tolerance: Decimal = Decimal(0)) -> None:
        self.cutoff = cutoff
        self.tolerance = tolerance
        self.accounting: dict[str, Entry] = {}
        """Listed by QuickBooks, not (yet) by the portal."""
        self.portal: dict[str, Entry] = {}
        """Listed by the portal, not (yet) by QuickBooks."""
        self.found: list[Discrepancy] = []
        self.paired = 0
        self.compared = 0
        self.skipped = 0
        self.skipped_numbers: list[str] = []
        """Left out as recent: the next incremental digest reads them again."""
        self.kept: dict[str, Entry | None] = {}
        """QuickBooks' side (None: it lacks the invoice) of each discrepancy and skipped
        invoice: the next incremental digest reads it again only if QuickBooks changed it."""
        self.rounding = 0
        self.listed = {"accounting": 0, "portal": 0}
        self.pages = {"accounting": 0, "portal": 0}
        self._strings: dict[str | None, str | None] = {None: None}

    def recent(self, entry: Entry | None) -> bool:
        changed = None if entry is None else entry[CHANGED]
        return changed is not None and changed > self.cutoff

    def entry_of(self, invoice: AccountingInvoice | PortalInvoice) -> Entry:
        if isinstance(invoice, AccountingInvoice):
            return self._entry(invoice, invoice.last_updated)
        return self._entry(invoice, invoice.last_synced_at)

    def _entry(self, invoice: AccountingInvoice | PortalInvoice, changed: datetime | None) -> Entry:
        shared = self._strings.setdefault  # one object per distinct name or currency
        name, currency = invoice.customer_name, invoice.currency
        return (invoice.balance, changed, shared(name, name) or "", shared(currency, currency))

    def add_accounting_page(self, page: list[tuple[str, Entry]]) -> None:
        self.pages["accounting"] += 1
        self.listed["accounting"] += len(page)
        waiting, pending, pair = self.portal, self.accounting, self.pair
        for number, entry in page:
            other = waiting.pop(number, None)
            if other is None:
                pending[number] = entry
            else:
                self.paired += 1
                pair(number, entry, other)

    def add_portal_page(self, page: list[tuple[str, Entry]]) -> None:
        self.pages["portal"] += 1
        self.listed["portal"] += len(page)
        waiting, pending, pair = self.accounting, self.portal, self.pair
        for number, entry in page:
            other = waiting.pop(number, None)
            if other is None:
                pending[number] = entry
            else:
                self.paired += 1
                pair(number, other, entry)

    def pair(self, number: str, acct: Entry | None, mirror: Entry | None) -> None:
        """Compare both sides of one invoice (None: that side does not have it)."""
        if self.recent(acct) or self.recent(mirror):
            self.skipped += 1
            self.skipped_numbers.append(number)
            self.kept[number] = acct
            return
        self.compared += 1
        if acct is not None and mirror is not None:
            difference = abs(acct[BALANCE] - mirror[BALANCE])
            if difference <= self.tolerance:
                self.rounding += difference > 0  # rounding: counted, not a discrepancy
                return
        either = acct or mirror
        assert either is not None
        self.kept[number] = acct
        self.found.append(
            Discrepancy(
                number=number,
                customer=either[CUSTOMER],
                currency=either[CURRENCY],
                accounting_balance=acct[BALANCE] if acct else None,
                portal_balance=mirror[BALANCE] if mirror else None,
                accounting_changed=acct[CHANGED] if acct else None,
                portal_synced=mirror[CHANGED] if mirror else None,
            )
        )

    def one_sided(self, side: dict[str, Entry]) -> list[str]:
        """The numbers to look up on the other side; recent ones are skipped right away."""
        numbers = []
        for number, entry in side.items():
            if self.recent(entry):
                self.skipped += 1
                self.skipped_numbers.append(number)
                if side is self.accounting:
                    self.kept[number] = entry
            else:
                numbers.append(number)
        return numbers


class Pace:
    """Keeps the two listings within ``max_ahead`` waiting entries of each other: the side
    holding more than that (and more than the other side holds) pauses, without leaving
    the page it is on, until the other side lists more or is done. Only the side holding
    more may wait, so both never wait at once."""

    def __init__(self, join: Join, *, max_ahead: int) -> None:
        self._waiting = {"accounting": join.accounting, "portal": join.portal}
        self._done = {"accounting": False, "portal": False}
        self._moved = asyncio.Event()
        self.max_ahead = max_ahead
        self.pauses = 0

    def _ahead(self, side: str) -> bool:
        other = "portal" if side == "accounting" else "accounting"
        mine, theirs = len(self._waiting[side]), len(self._waiting[other])
        return mine > self.max_ahead and mine > theirs and not self._done[other]

    async def listed(self, side: str) -> None:
        """After each page of ``side``: wake the other side, and wait while too far ahead."""
        self._moved.set()
        if self._ahead(side):
            self.pauses += 1
        while self._ahead(side):
            self._moved.clear()
            await self._moved.wait()

    def finished(self, side: str) -> None:
        self._done[side] = True
        self._moved.set()


async def run_digest(
    *,
    accounting: AccountingSystem,
    portal: BillingPortal,
    recent: timedelta = RECENT,
    tolerance: Decimal = Decimal(0),
    clock: Callable[[], datetime] = utcnow,
    timer: Callable[[], float] = time.monotonic,
    max_ahead: int = MAX_AHEAD,
) -> DigestResult:
    """Scan both systems and return every discrepancy, worst first, or raise DigestFailed.
    Differences of at most ``tolerance`` are rounding: counted, not reported."""
    started_at, began = clock(), timer()
    join = Join(cutoff=started_at - recent, tolerance=tolerance)
    pace = Pace(join, max_ahead=max_ahead)

    async def list_accounting() -> None:
        async for page in accounting.iter_open_invoices(page_size=PAGE_SIZE):
            join.add_accounting_page(page)
            await pace.listed("accounting")
        pace.finished("accounting")

    async def list_portal() -> None:
        async for page in portal.iter_open_invoices(page_size=PAGE_SIZE):
            join.add_portal_page(page)
            await pace.listed("portal")
        pace.finished("portal")

    try:
        await _all(list_accounting(), list_portal())
        only_accounting = join.one_sided(join.accounting)
        only_portal = join.one_sided(join.portal)
        mirrored, accounted = await _all(
            _look_up(only_accounting, portal.get_invoices, join, join.accounting, side="portal"),
            _look_up(only_portal, accounting.get_invoices, join, join.portal, side="accounting"),
        )
    except UpstreamError as exc:
        raise DigestFailed(exc) from exc
    return DigestResult(
        started_at=started_at,
        duration=timedelta(seconds=timer() - began),
        open_invoices=join.listed["accounting"] + join.listed["portal"] - join.paired,
        compared=join.compared,
        skipped_recent=join.skipped,
        recent_window=recent,
        within_tolerance=join.rounding,
        tolerance=tolerance,
        discrepancies=tuple(worst_first(join.found)),
        skipped_numbers=tuple(join.skipped_numbers),
        accounting_kept=join.kept,
        accounting=SideStats(
            open=join.listed["accounting"],
            pages=join.pages["accounting"],
            looked_up=len(only_portal),
            found=accounted,
        ),
        portal=SideStats(
            open=join.listed["portal"],
            pages=join.pages["portal"],
            looked_up=len(only_accounting),
            found=mirrored,
        ),
    )


async def _look_up(
    numbers: list[str],
    get_invoices: Callable[[list[str]], Awaitable[dict[str, Any]]],
    join: Join,
    listed: dict[str, Entry],
    *,
    side: str,
) -> int:
    """Look ``numbers`` (listed on one side) up on the other ``side``; returns how many it had."""
    found = 0
    for start in range(0, len(numbers), LOOKUP_CHUNK):
        chunk = numbers[start : start + LOOKUP_CHUNK]
        answers = await get_invoices(chunk)
        found += len(answers)
        for number in chunk:
            entry = listed.pop(number)
            other = answers.get(number)
            looked = join.entry_of(other) if other is not None else None
            if side == "portal":
                join.pair(number, entry, looked)
            else:
                join.pair(number, looked, entry)
    return found


async def _all(first: Coroutine[Any, Any, T], second: Coroutine[Any, Any, U]) -> tuple[T, U]:
    """Run both at once; the first failure cancels the other and is raised as it is."""
    a, b = asyncio.ensure_future(first), asyncio.ensure_future(second)
    tasks: list[asyncio.Future[Any]] = [a, b]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
        return a.result(), b.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
