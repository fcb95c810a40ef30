"""The discrepancy digest's domain: what a scan finds and what a stored run says.

The scan itself is ``services.digest_scan.run_digest``; the runs are kept by
``services.storage.digests.DigestRuns``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from services.comparison import Verdict
from services.errors import BotError, UpstreamError
from services.ports import Listed

DEFAULT_CURRENCY = "USD"


class Kind(StrEnum):
    """What is wrong with one invoice (a later issue adds the cause behind it)."""

    STALE_BALANCE = "stale_balance"
    """Open on both sides with different balances."""
    PAID_IN_ACCOUNTING = "paid_in_accounting"
    """Paid in QuickBooks Online (balance 0), still open in the portal."""
    MISSING_IN_PORTAL = "missing_in_portal"
    MISSING_IN_ACCOUNTING = "missing_in_accounting"


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One invoice whose two sides disagree. Balances are None on the side that lacks it."""

    number: str
    customer: str
    currency: str | None
    accounting_balance: Decimal | None
    portal_balance: Decimal | None
    accounting_changed: datetime | None
    """QuickBooks Online's ``LastUpdatedTime`` (the sync date of a full resync uses it)."""
    portal_synced: datetime | None

    @property
    def verdict(self) -> Verdict:
        if self.portal_balance is None:
            return Verdict.MISSING_IN_PORTAL
        if self.accounting_balance is None:
            return Verdict.MISSING_IN_ACCOUNTING
        return Verdict.MISMATCH

    @property
    def kind(self) -> Kind:
        if self.portal_balance is None:
            return Kind.MISSING_IN_PORTAL
        if self.accounting_balance is None:
            return Kind.MISSING_IN_ACCOUNTING
        return Kind.PAID_IN_ACCOUNTING if self.accounting_balance == 0 else Kind.STALE_BALANCE

    @property
    def difference(self) -> Decimal | None:
        """QuickBooks balance minus portal balance, when both sides have the invoice."""
        if self.accounting_balance is None or self.portal_balance is None:
            return None
        return self.accounting_balance - self.portal_balance

    @property
    def amount(self) -> Decimal:
        """The money at stake: the difference, or the balance of the one side that has it."""
        difference = self.difference
        if difference is not None:
            return abs(difference)
        return abs(self.accounting_balance or self.portal_balance or Decimal(0))

    @property
    def resync_can_fix(self) -> bool:
        """The portal copies QuickBooks: a resync cannot bring back an invoice QBO lacks."""
        return self.accounting_balance is not None


def worst_first(found: list[Discrepancy]) -> list[Discrepancy]:
    return sorted(found, key=lambda d: (-d.amount, d.number))


@dataclass(frozen=True)
class SideStats:
    """What one system contributed to a scan."""

    open: int = 0
    """Invoices it listed as open."""
    pages: int = 0
    """Pages of the open-invoice listing received."""
    looked_up: int = 0
    """Invoice numbers looked up because only the other side listed them as open."""
    found: int = 0
    """How many of those it had."""


@dataclass(frozen=True)
class DigestResult:
    """A finished scan. A scan that could not finish raises DigestFailed instead."""

    started_at: datetime
    duration: timedelta
    open_invoices: int
    """Distinct invoices open on at least one side (skipped ones included)."""
    compared: int
    skipped_recent: int
    """Left out: changed within the recent window on either side (possibly mid-sync)."""
    recent_window: timedelta
    discrepancies: tuple[Discrepancy, ...]
    """Worst first (largest amount at stake)."""
    accounting: SideStats = field(default_factory=SideStats)
    portal: SideStats = field(default_factory=SideStats)
    within_tolerance: int = 0
    """Both sides differ by no more than ``tolerance``: rounding, counted, not reported."""
    tolerance: Decimal = Decimal(0)
    skipped_numbers: tuple[str, ...] = ()
    """The invoices left out as recent (the next incremental digest reads them again)."""
    accounting_kept: Mapping[str, Listed | None] = field(default_factory=dict)
    """QuickBooks' side of the discrepancies and skipped invoices (``Join.kept``)."""
    incremental: bool = False
    """Only what changed since the last complete digest was read (``reread`` invoices);
    ``open_invoices`` is then that digest's count."""
    reread: int = 0

    @property
    def carried(self) -> list[str]:
        """What the next incremental digest reads again whatever changed."""
        return sorted({d.number for d in self.discrepancies} | set(self.skipped_numbers))

    @property
    def amounts_at_stake(self) -> dict[str, Decimal]:
        """Total at stake per currency, largest first."""
        totals: dict[str, Decimal] = {}
        for d in self.discrepancies:
            code = (d.currency or DEFAULT_CURRENCY).upper()
            totals[code] = totals.get(code, Decimal(0)) + d.amount
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    @property
    def amount_at_stake(self) -> Decimal:
        """The total in the main currency (the one with the most at stake)."""
        return next(iter(self.amounts_at_stake.values()), Decimal("0.00"))

    def count(self, kind: Kind) -> int:
        return self.kinds[kind]

    @property
    def kinds(self) -> Counter[Kind]:
        return Counter(d.kind for d in self.discrepancies)


class DigestFailed(BotError):
    """The scan could not finish (an upstream error after the adapters' retries)."""

    def __init__(self, cause: UpstreamError) -> None:
        super().__init__(f"The digest could not finish: {cause.system} {cause.message}")
        self.cause = cause


# -- stored runs -----------------------------------------------------------------------


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    COMMAND = "command"


class RunState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class DigestRun:
    id: str
    trigger: Trigger
    channel: str
    state: RunState
    started_at: datetime
    requested_by: str | None = None
    day: date | None = None
    finished_at: datetime | None = None
    open_invoices: int | None = None
    discrepancies: int | None = None
    skipped_recent: int | None = None
    amount_at_stake: Decimal | None = None
    duration_seconds: float | None = None
    message_ts: str | None = None
    detail: str | None = None
    rechecks_failed: int | None = None
    """Discrepancies whose cause could not be re-checked (listed without a write button)."""


class DigestAlreadyRunning(BotError):
    """A digest is running: a second one is not started."""

    def __init__(self, run: DigestRun) -> None:
        super().__init__("A digest is already running.")
        self.run = run


class DigestAlreadyDone(BotError):
    """Today's scheduled digest already ran (or another replica is running it)."""

    def __init__(self, run: DigestRun) -> None:
        super().__init__(f"The scheduled digest of {run.day} already ran.")
        self.run = run
