"""Wire models of the Portal REST API's payments (``docs/portal-api.yaml``): what clients
paid in the portal and the transfer of each payment to the accounting package."""

from __future__ import annotations

from services.adapters.portal.wire import Invoice, Money, Wire, parse
from services.models import PortalPayment, TransferStatus, UtcDateTime

MAX_LOOKUP = 1000


class Payment(Wire):
    id: str
    invoice_number: str
    reference: str
    amount: Money
    currency: str | None
    paid_at: UtcDateTime
    transfer_status: TransferStatus
    transfer_error: str | None
    transferred_at: UtcDateTime | None
    external_id: str | None
    invoice_external_id: str | None

    def domain(self) -> PortalPayment:
        return PortalPayment(
            id=self.id,
            invoice_number=self.invoice_number,
            reference=self.reference,
            amount=self.amount,
            currency=self.currency,
            paid_at=self.paid_at,
            status=self.transfer_status,
            error=self.transfer_error,
            transferred_at=self.transferred_at,
            external_id=self.external_id,
            invoice_external_id=self.invoice_external_id,
        )


class InvoicePayments(Wire):
    invoice_number: str
    payments: list[Payment]


class InvoiceWithPayments(Invoice):
    """Contract 1.2: ``GET /invoices/{number}?include=payments``. ``payments`` is None when
    a portal ignored ``include`` instead of refusing it."""

    payments: list[Payment] | None = None


class PaymentLookup(Wire):
    payments: list[Payment]
    missing: list[str]
    deferred: list[str] = []
    """Contract 1.1: invoices whose payments did not fit in this answer (ask again)."""


class PaymentPage(Wire):
    payments: list[Payment]
    next_cursor: str | None


__all__ = [
    "MAX_LOOKUP",
    "InvoicePayments",
    "InvoiceWithPayments",
    "Payment",
    "PaymentLookup",
    "PaymentPage",
    "parse",
]
