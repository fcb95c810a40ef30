"""What a seeded scenario is: an invoice on both sides, and the story of what happened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal


@dataclass(frozen=True)
class Paid:
    """A payment in a scenario's story."""

    reference: str
    amount: Decimal
    ago: timedelta
    qbo_id: str | None = None
    """The payment's Id in QBO, when QBO has it (posted, or entered by hand)."""


@dataclass(frozen=True)
class Story:
    """What happened to a scenario's invoice, played out by the fake systems' mechanics."""

    portal_payments: tuple[Paid, ...] = ()
    """Paid by the client in the portal. With a ``qbo_id``: posted to QBO then (to the
    invoice as it was); without: still to be transferred by the portal's payment run, which
    QBO may refuse."""
    hand_payments: tuple[Paid, ...] = ()
    """Entered by hand in QBO on the customer, applied to no invoice."""
    credit_taken_off: tuple[str, Decimal] | None = None
    """(credit memo number, amount): applied to the invoice before the portal's last sync,
    taken off it in QBO ``modified_ago``."""
    recreated: bool = False
    """Deleted and recreated in QBO with the same number ``modified_ago``; the portal still
    links the deleted one."""
    voided: bool = False
    """Voided in QBO ``modified_ago``."""


@dataclass(frozen=True)
class Scenario:
    number: str
    customer_id: str
    customer: str
    total: Decimal
    qbo_balance: Decimal | None
    """None: not in QBO."""
    portal_balance: Decimal | None
    """None: not in the portal."""
    modified_ago: timedelta
    """When QBO last changed the invoice."""
    note: str
    stale_link: bool = False
    """The portal's copy points at a QBO Id that no longer exists (invoice recreated):
    a record resync fails, a full resync (which matches by number) fixes it."""
    cause: str = "stale_copy"
    """What the bot's diagnosis names (a ``services.causes.Cause`` value)."""
    story: Story | None = None
