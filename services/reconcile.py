"""Pure reconciliation: compare both sides of an invoice, choose a sync date."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from services.comparison import Comparison, Verdict
from services.models import AccountingInvoice, PortalInvoice


def compare(
    number: str,
    accounting: AccountingInvoice | None,
    portal: PortalInvoice | None,
    *,
    checked_at: datetime,
    portal_last_sync_at: datetime | None = None,
    tolerance: Decimal = Decimal(0),
) -> Comparison:
    """The verdict for one invoice. The accounting package is the source of truth.

    A difference at or below ``tolerance`` (not zero) is ``Verdict.ROUNDING``: counted, but
    not a discrepancy (``out_of_sync`` is False).
    """
    difference = None
    if accounting is None and portal is None:
        verdict = Verdict.NOT_FOUND
    elif portal is None:
        verdict = Verdict.MISSING_IN_PORTAL
    elif accounting is None:
        verdict = Verdict.MISSING_IN_ACCOUNTING
    else:
        difference = accounting.balance - portal.balance
        if difference == 0:
            verdict = Verdict.IN_SYNC
        elif abs(difference) <= tolerance:
            verdict = Verdict.ROUNDING
        else:
            verdict = Verdict.MISMATCH
    if portal is not None and portal.last_synced_at is not None:
        portal_last_sync_at = portal.last_synced_at
    return Comparison(
        number=number,
        accounting=accounting,
        portal=portal,
        verdict=verdict,
        difference=difference,
        portal_last_sync_at=portal_last_sync_at,
        checked_at=checked_at,
    )


def choose_sync_date(*, now: datetime, last_modified: datetime | None = None) -> date:
    """The "sync from" date for a full resync.

    One day back by default; the day before the invoice's last modification in the
    accounting package when that is earlier, so the resync is sure to pick it up.
    """
    default = (now - timedelta(days=1)).date()
    if last_modified is None:
        return default
    return min(default, (last_modified - timedelta(days=1)).date())
