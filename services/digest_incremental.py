"""The incremental digest: re-read only what changed on either side since the last complete
digest, plus what that digest left open (its discrepancies and the invoices it skipped as
recent), and answer what a full scan would.

Why the answer is the same: a full scan reports an invoice when it is open on at least one
side and both sides differ (beyond the tolerance), unless either side changed within the
recent window. An invoice neither side changed since the last digest's cutoff compares now
as it compared then: in sync then (or not open), so in sync now. Every other invoice is
read here on both sides and compared by the same ``Join``:

- QuickBooks: invoices whose ``MetaData.LastUpdatedTime`` is at or after ``since``
  (applying a payment or a credit changes the invoice's balance, so its time);
- the portal: ``GET /invoices?updated_since=`` (contract 1.2), whatever the status;
- the numbers carried from the last digest; the other side of each number is looked up.

What it cannot see is a QuickBooks invoice *deleted* since (no query lists it): the caller
scans in full when the watch saw a deletion, and weekly anyway (``DIGEST_FULL_EVERY``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from services.digest import DigestFailed, DigestResult, SideStats, worst_first
from services.digest_scan import BALANCE, RECENT, Join
from services.errors import BotError, UpstreamError, ValidationFault
from services.models import AccountingInvoice, utcnow
from services.ports import AccountingSystem, BillingPortal, Listed

MAX_CHANGES = 20_000
"""More changes than this on one side: a full scan costs about as much."""


class ChainBroken(BotError):
    """The changes cannot be followed from the last digest: scan in full."""


async def run_incremental_digest(
    *,
    accounting: AccountingSystem,
    portal: BillingPortal,
    since: datetime,
    carried: Collection[str],
    open_invoices: int,
    known: Mapping[str, Listed | None] = MappingProxyType({}),
    recent: timedelta = RECENT,
    tolerance: Decimal = Decimal(0),
    clock: Callable[[], datetime] = utcnow,
    timer: Callable[[], float] = time.monotonic,
    max_changes: int = MAX_CHANGES,
) -> DigestResult:
    """The discrepancies a full scan would find now, reading what changed since ``since``
    (the last complete digest's cutoff) and the ``carried`` numbers. ``open_invoices`` is
    that digest's count, reported as is. ``known``: QuickBooks' side of carried numbers as
    that digest read it (``DigestResult.accounting_kept``), not read again unless QuickBooks
    changed the invoice since (its LastUpdatedTime moves with any change). ChainBroken when
    there are too many changes (or the portal cannot list them), DigestFailed when a
    system fails."""
    started_at, began = clock(), timer()
    join = Join(cutoff=started_at - recent, tolerance=tolerance)
    try:
        changed_acct, changed_portal = await asyncio.gather(
            accounting.list_changed_invoices(since=since, limit=max_changes),
            portal.list_changed_invoices(since=since),
        )
        if max(len(changed_acct), len(changed_portal)) >= max_changes:
            raise ChainBroken(f"more than {max_changes} invoices changed since the last digest")
        acct = _newest(changed_acct)
        mirror = {i.number: i for i in changed_portal}
        numbers = sorted(set(acct) | set(mirror) | set(carried))
        more_acct, more_portal = await asyncio.gather(
            accounting.get_invoices([n for n in numbers if n not in acct and n not in known]),
            portal.get_invoices([n for n in numbers if n not in mirror]),
        )
    except ValidationFault as exc:  # a 1.1 portal: no updated_since
        raise ChainBroken(f"{exc.system} cannot list what changed: {exc.message}") from exc
    except UpstreamError as exc:
        raise DigestFailed(exc) from exc
    acct.update(more_acct)
    mirror.update(more_portal)
    open_acct = open_portal = 0
    for number in numbers:
        a, p = acct.get(number), mirror.get(number)
        a_entry = join.entry_of(a) if a is not None else known.get(number)
        a_open = a_entry is not None and a_entry[BALANCE] > 0
        p_open = p is not None and p.status == "open"
        open_acct, open_portal = open_acct + a_open, open_portal + p_open
        if a_open or p_open:
            join.pair(number, a_entry, join.entry_of(p) if p is not None else None)
    return DigestResult(
        started_at=started_at,
        duration=timedelta(seconds=timer() - began),
        open_invoices=open_invoices,
        compared=join.compared,
        skipped_recent=join.skipped,
        recent_window=recent,
        within_tolerance=join.rounding,
        tolerance=tolerance,
        discrepancies=tuple(worst_first(join.found)),
        accounting=SideStats(open=open_acct, looked_up=len(more_acct)),
        portal=SideStats(open=open_portal, looked_up=len(more_portal)),
        skipped_numbers=tuple(join.skipped_numbers),
        accounting_kept=join.kept,
        incremental=True,
        reread=len(numbers),
    )


def _newest(invoices: list[AccountingInvoice]) -> dict[str, AccountingInvoice]:
    """By number; the most recently changed when a number repeats (as ``get_invoices``)."""
    found: dict[str, AccountingInvoice] = {}
    for invoice in invoices:
        kept = found.get(invoice.number)
        if kept is None or invoice.last_updated > kept.last_updated:
            found[invoice.number] = invoice
    return found
