"""The fake portal's payments: what clients paid in the portal, and the transfer of each
payment to QuickBooks Online (pending, posted, or failed with QuickBooks' reason)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from sandbox.scenarios import SeedInvoice

TransferStatus = Literal["pending", "posted", "failed"]


@dataclass
class Payment:
    """A payment a client made in the portal, and its transfer to QuickBooks Online."""

    id: str
    invoice_number: str
    reference: str
    amount: Decimal
    currency: str | None
    paid_at: datetime
    invoice_external_id: str | None
    """The QBO invoice Id the portal's copy linked to when the client paid."""
    customer_id: str | None
    transfer_status: TransferStatus = "pending"
    transfer_error: str | None = None
    transferred_at: datetime | None = None
    external_id: str | None = None
    """The QBO payment Id, once posted."""


def story_payments(row: SeedInvoice, now: datetime) -> dict[str, list[Payment]]:
    """The portal payments of a scenario's story: posted when QBO has them, else pending."""
    if row.story is None or not row.story.portal_payments:
        return {}
    payments = []
    for paid in row.story.portal_payments:
        payment = Payment(
            id=f"pay-{row.number}-{paid.reference.lower()}",
            invoice_number=row.number,
            reference=paid.reference,
            amount=paid.amount,
            currency="USD",
            paid_at=now - paid.ago,
            invoice_external_id=row.portal_external_id,
            customer_id=row.customer_id,
        )
        if paid.qbo_id is not None:
            payment.transfer_status, payment.external_id = "posted", paid.qbo_id
            payment.transferred_at = payment.paid_at + timedelta(minutes=5)
        payments.append(payment)
    return {row.number: payments}
