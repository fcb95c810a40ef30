"""Wire models of the Portal REST API's payments (``docs/portal-api.yaml``): what clients
paid in the portal and the transfer of each payment to the accounting package."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from services.errors import UpstreamError
from services.models import PortalPayment, TransferStatus, UtcDateTime, money

MAX_LOOKUP = 1000


def _money(value: object) -> Decimal:
    if not isinstance(value, str):
        raise ValueError("money must be a decimal string")
    return money(value)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Payment(_Wire):
    id: str
    invoice_number: str
    reference: str
    amount: Annotated[Decimal, BeforeValidator(_money)]
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


class InvoicePayments(_Wire):
    invoice_number: str
    payments: list[Payment]


class PaymentLookup(_Wire):
    payments: list[Payment]
    missing: list[str]


class PaymentPage(_Wire):
    payments: list[Payment]
    next_cursor: str | None


M = TypeVar("M", InvoicePayments, PaymentLookup, PaymentPage)


def parse(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise UpstreamError(
            f"The portal answered in an unexpected shape ({where}: {problem['msg']})",
            system="portal",
        ) from None
