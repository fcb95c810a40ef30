"""One invoice compared across the accounting package and the portal, and the evidence
the diagnosis looks at."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from services.causes import Diagnosis
from services.models import (
    AccountingInvoice,
    AccountingPayment,
    CreditMemo,
    Frozen,
    InvoiceRecord,
    PortalInvoice,
    PortalPayment,
    UtcDateTime,
)

DEFAULT_MONEY_TOLERANCE = Decimal("0.05")
"""Differences at or below this are rounding (PSA, QuickBooks and portal round tax apart)."""


class Verdict(StrEnum):
    IN_SYNC = "in_sync"
    MISMATCH = "mismatch"
    MISSING_IN_PORTAL = "missing_in_portal"
    MISSING_IN_ACCOUNTING = "missing_in_accounting"
    NOT_FOUND = "not_found"
    ROUNDING = "rounding"
    """Both sides differ by no more than the money tolerance: counted, not reported."""


class Comparison(Frozen):
    """Both sides of one invoice and the verdict."""

    number: str
    accounting: AccountingInvoice | None
    portal: PortalInvoice | None
    verdict: Verdict
    difference: Decimal | None = None
    """accounting balance minus portal balance, when both exist."""
    portal_last_sync_at: UtcDateTime | None = None
    checked_at: UtcDateTime
    diagnosis: Diagnosis | None = None
    """Why the sides differ, when the check looked into it (services.diagnosis)."""

    @property
    def customer_name(self) -> str | None:
        if self.accounting is not None:
            return self.accounting.customer_name
        if self.portal is not None:
            return self.portal.customer_name
        return None

    @property
    def out_of_sync(self) -> bool:
        return self.verdict in (
            Verdict.MISMATCH,
            Verdict.MISSING_IN_PORTAL,
            Verdict.MISSING_IN_ACCOUNTING,
        )


class Evidence(Frozen):
    """Everything the diagnosis looks at for one invoice (gathered by services.evidence)."""

    comparison: Comparison
    tolerance: Decimal = DEFAULT_MONEY_TOLERANCE
    gathered: bool = False
    """False: only the comparison is known (nothing else was read)."""
    records: tuple[InvoiceRecord, ...] = ()
    """Accounting invoices with this number (more than one: duplicates)."""
    link_record: InvoiceRecord | None = None
    """What the portal's link (external_id) points at, when it is not the current invoice."""
    link_checked: bool = False
    """The portal's link was looked up (``link_record`` None then means: no such invoice)."""
    payments: tuple[AccountingPayment, ...] = ()
    """The customer's accounting payments applied to this invoice (or to the one the portal
    links to), and those applied to nothing (unapplied)."""
    credit_memos: tuple[CreditMemo, ...] = ()
    """The customer's credit memos with credit remaining."""
    portal_payments: tuple[PortalPayment, ...] = ()
    gaps: tuple[str, ...] = ()
    """What could not be read, and why."""

    @property
    def number(self) -> str:
        return self.comparison.number
