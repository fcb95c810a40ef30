"""The console's ``pay N AMOUNT [REF]`` (sandbox): a client pays an invoice in the fake
portal, which transfers the payment to QuickBooks (at once, or later: then the outcome is
printed when the transfer is done)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from sandbox.portal.ledger import Payment
from sandbox.portal.payments import take_payment
from sandbox.portal.state import PortalState

USAGE = "pay N AMOUNT [REF], e.g. pay 11264 5.00"


class ClientPayments:
    """Takes the console's payments in ``portal``; ``write`` prints for the console."""

    def __init__(self, portal: PortalState, write: Callable[[str], None]) -> None:
        self.portal = portal
        self.write = write
        self._told: set[str] = set()
        self._references = (f"CB-{n}" for n in itertools.count(9001))

    async def pay(self, args: list[str]) -> bool:
        """Take the payment ``args`` describe; True when it was settled at once (posted,
        refused or unanswered), False when refused as input or pending a transfer."""
        if len(args) not in (2, 3):
            self.write(USAGE)
            return False
        number, raw = args[0], args[1].removeprefix("$")
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            amount = Decimal(0)
        invoice = self.portal.invoices.get(number)
        if invoice is None or not amount.is_finite() or amount <= 0:
            self.write(f"(sandbox) No such invoice or amount in the portal. {USAGE}")
            return False
        reference = args[2] if len(args) == 3 else next(self._references)
        paid = await take_payment(self.portal, number, amount, reference=reference)
        if paid.transfer_status == "pending" and self.portal.transfers:
            self.write(
                f"(sandbox) A client paid ${paid.amount} on invoice {number} in the portal "
                f"({reference}): pending, transferred to QuickBooks in "
                f"{self.portal.transfer_delay:g} s"
            )
            for task in self.portal.transfers:
                task.add_done_callback(functools.partial(self._transferred, paid))
            return False
        result = {
            "posted": "posted to QuickBooks",
            "failed": f"refused by QuickBooks: {paid.transfer_error}",
        }.get(paid.transfer_status, "not transferred yet (QuickBooks did not answer)")
        self.write(
            f"(sandbox) A client paid ${paid.amount} on invoice {number} in the portal "
            f"({reference}): {result}"
        )
        return True

    def _transferred(self, paid: Payment, _: object = None) -> None:
        if paid.id in self._told or paid.transfer_status == "pending":
            return
        self._told.add(paid.id)
        result = {
            "posted": "posted to QuickBooks",
            "failed": f"refused by QuickBooks: {paid.transfer_error}",
        }.get(paid.transfer_status, "still pending (QuickBooks did not answer)")
        self.write(f"(sandbox) The portal transferred {paid.reference}: {result}")
