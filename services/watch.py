"""The QuickBooks watch's domain: which invoices a change touches, and the collision of a
payment recorded by hand in QuickBooks with a portal payment still pending transfer.

A change event names an entity; what it touches is read from QuickBooks (``ChangeFeed``):
an invoice itself, the invoices a payment is applied to, the open invoices of a credit
memo's customer. A payment applied to no invoice touches its customer's open invoices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from services.errors import (
    AuthenticationError,
    ReconnectRequired,
    ThrottledError,
    TransientError,
)
from services.models import AccountingPayment, PortalPayment, TransferStatus
from services.ports import BillingPortal
from services.watch_events import ChangeEvent

CDC_DAYS = 30
"""QuickBooks' Change Data Capture reaches back 30 days at most."""
SYSTEM_DOWN = (ThrottledError, TransientError, AuthenticationError, ReconnectRequired)
"""Failures that say nothing about the events read: the events wait, untouched, for the
next round (any other failure is the events' own: tried again, then set aside)."""


@dataclass(frozen=True)
class RecordedPayment:
    """A payment in QuickBooks, the invoice numbers it is applied to, who recorded it."""

    payment: AccountingPayment
    invoices: dict[str, Decimal]
    """Invoice number -> amount applied to it."""
    recorded_by: str | None = None


@dataclass(frozen=True)
class OpenInvoice:
    number: str
    balance: Decimal


class ChangeFeed(Protocol):
    """What the watch reads from QuickBooks (services.adapters.qbo.changes)."""

    async def invoice_numbers(self, ids: Sequence[str]) -> dict[str, str]:
        """Invoice Id -> DocNumber (deleted ones left out)."""
        ...

    async def payments(self, ids: Sequence[str]) -> list[RecordedPayment]: ...

    async def credit_memo_customers(self, ids: Sequence[str]) -> list[str]:
        """The customers of these credit memos."""
        ...

    async def open_invoices(self, customer_id: str) -> list[OpenInvoice]: ...

    async def balances(self, numbers: Sequence[str]) -> dict[str, Decimal]: ...

    async def changes_since(self, since: datetime) -> list[ChangeEvent]:
        """Every invoice, payment and credit memo changed since ``since`` (CDC; the caller
        keeps ``since`` within CDC_DAYS). CdcTruncated when QuickBooks could not list
        them all."""
        ...


class CdcTruncated(Exception):
    """More changes than QuickBooks' CDC answers at once: ``events`` is what it listed,
    ``entities`` the ones it cut short (the digest has to catch up)."""

    def __init__(self, events: Sequence[ChangeEvent], *, entities: Sequence[str]) -> None:
        super().__init__(f"CDC answered its maximum for {', '.join(entities)}")
        self.events = list(events)
        self.entities = list(entities)


@dataclass(frozen=True)
class Collision:
    """A payment recorded by hand in QuickBooks while the portal's is pending transfer."""

    invoice_number: str
    portal: PortalPayment
    qbo: AccountingPayment
    recorded_by: str | None
    matched: str
    """Why they are taken for the same money: ``same amount`` or ``remaining balance``."""


@dataclass
class Touched:
    """What a batch of events touches."""

    invoices: dict[str, str] = field(default_factory=dict)
    """Invoice number -> why (the first event that touched it)."""
    collisions: list[Collision] = field(default_factory=list)


async def touched_by(
    events: Sequence[ChangeEvent], *, feed: ChangeFeed, portal: BillingPortal
) -> Touched:
    """The invoices ``events`` touch, and the collisions among their payments."""
    found = Touched()
    ids = {kind: [e.entity_id for e in events if e.entity == kind] for kind in _KINDS}
    if ids["Invoice"]:
        for number in (await feed.invoice_numbers(ids["Invoice"])).values():
            found.invoices.setdefault(number, "Invoice edited in QuickBooks")
    if ids["CreditMemo"]:
        for customer in dict.fromkeys(await feed.credit_memo_customers(ids["CreditMemo"])):
            for invoice in await feed.open_invoices(customer):
                found.invoices.setdefault(
                    invoice.number, "A credit memo of the customer changed in QuickBooks"
                )
    if ids["Payment"]:
        for recorded in await feed.payments(ids["Payment"]):
            found.collisions += await collisions_of(recorded, feed=feed, portal=portal)
            numbers = list(recorded.invoices)
            if not numbers and recorded.payment.customer_id:
                numbers = [i.number for i in await feed.open_invoices(recorded.payment.customer_id)]
            for number in numbers:
                found.invoices.setdefault(number, "A payment recorded in QuickBooks")
    return found


_KINDS = ("Invoice", "Payment", "CreditMemo")


async def collisions_of(
    recorded: RecordedPayment, *, feed: ChangeFeed, portal: BillingPortal
) -> list[Collision]:
    """The portal payments still pending transfer on the invoices this QuickBooks payment is
    applied to (or, applied to none, its customer's open invoices) for the same amount or
    the invoice's remaining balance."""
    payment = recorded.payment
    applied = dict(recorded.invoices)
    if not applied and payment.customer_id:
        applied = {i.number: Decimal(0) for i in await feed.open_invoices(payment.customer_id)}
    if not applied:
        return []
    pending = {
        number: [p for p in payments if p.status is TransferStatus.PENDING]
        for number, payments in (await portal.get_invoice_payments(list(applied))).items()
    }
    pending = {number: found for number, found in pending.items() if found}
    if not pending:
        return []
    balances = await feed.balances(list(pending))
    collisions = []
    for number, payments in pending.items():
        before = balances.get(number, Decimal(0)) + applied.get(number, Decimal(0))
        for portal_payment in payments:
            if _is_the_transfer(portal_payment, payment):
                continue
            matched = _match(portal_payment.amount, payment, applied.get(number), before)
            if matched:
                collisions.append(
                    Collision(
                        invoice_number=number,
                        portal=portal_payment,
                        qbo=payment,
                        recorded_by=recorded.recorded_by,
                        matched=matched,
                    )
                )
    return collisions


def _is_the_transfer(portal_payment: PortalPayment, payment: AccountingPayment) -> bool:
    """The QuickBooks payment is the portal's own transfer of this payment (a hand entry
    may carry the portal's reference, copied from the client's remittance: not a sign)."""
    return portal_payment.external_id == payment.id


def _match(
    amount: Decimal, payment: AccountingPayment, applied: Decimal | None, before: Decimal
) -> str | None:
    if amount in (payment.total, applied):
        return "same amount"
    if before > 0 and amount == before:
        return "remaining balance"
    return None


def quiet_hours(text: str) -> tuple[time, time]:
    """``HH:MM-HH:MM`` (ALERT_QUIET_HOURS) as its two times; ValueError otherwise."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError("ALERT_QUIET_HOURS is HH:MM-HH:MM, e.g. 20:00-07:00")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


def in_quiet_hours(now: datetime, hours: str | None, timezone: str) -> bool:
    """``now`` falls within ``hours`` in ``timezone`` (a span may cross midnight)."""
    if not hours:
        return False
    start, end = quiet_hours(hours)
    local = now.astimezone(ZoneInfo(timezone)).time()
    return start <= local < end if start <= end else local >= start or local < end
