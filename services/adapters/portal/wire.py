"""The Portal REST API's answers (``docs/portal-api.yaml``) as pydantic models, checked as
they are read, and its error bodies."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from services.errors import UpstreamError
from services.models import (
    Integration,
    IntegrationKind,
    PortalInvoice,
    PortalRecord,
    ProcessedRecord,
    RecordResync,
    RecordType,
    SyncRun,
    SyncStatus,
    UtcDateTime,
    money,
)

SYSTEM = "portal"


def money_text(value: object) -> Decimal:
    if not isinstance(value, str):
        raise ValueError("money must be a decimal string")
    return money(value)


Money = Annotated[Decimal, BeforeValidator(money_text)]


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Customer(Wire):
    id: str | None
    name: str


class Invoice(Wire):
    number: str
    external_id: str | None
    customer: Customer
    total: Money
    balance: Money
    currency: str | None
    status: Literal["open", "paid", "void"]
    integration_id: str
    last_synced_at: UtcDateTime | None

    def domain(self) -> PortalInvoice:
        return PortalInvoice(
            number=self.number,
            external_id=self.external_id,
            customer_id=self.customer.id,
            customer_name=self.customer.name,
            total=self.total,
            balance=self.balance,
            currency=self.currency,
            status=self.status,
            integration_id=self.integration_id,
            last_synced_at=self.last_synced_at,
        )


class InvoicePage(Wire):
    invoices: list[Invoice]
    next_cursor: str | None


class Lookup(Wire):
    invoices: list[Invoice]
    missing: list[str]


class IntegrationWire(Wire):
    id: str
    name: str
    provider: str
    kind: IntegrationKind
    last_successful_sync_at: UtcDateTime | None
    connected_at: UtcDateTime | None = None
    """Contract 1.2; absent from a 1.1 portal."""

    def domain(self) -> Integration:
        return Integration(**self.model_dump())


class CompanyWire(Wire):
    id: str
    name: str

    def domain(self) -> PortalRecord:
        return PortalRecord(record_type=RecordType.COMPANY, id=self.id, name=self.name)


class ContactWire(Wire):
    id: str
    company_id: str
    name: str

    def domain(self) -> PortalRecord:
        return PortalRecord(
            record_type=RecordType.CONTACT, id=self.id, name=self.name, company_id=self.company_id
        )


class Integrations(Wire):
    integrations: list[IntegrationWire]


class SyncRunWire(Wire):
    id: str
    integration_id: str
    status: SyncStatus
    sync_from: date
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None
    records_processed: int
    error: str | None

    def domain(self) -> SyncRun:
        return SyncRun(**self.model_dump())


class SyncRuns(Wire):
    sync_runs: list[SyncRunWire]


class Record(Wire):
    record_type: RecordType
    number: str
    action: str
    balance_before: Money | None
    balance_after: Money | None

    def domain(self) -> ProcessedRecord:
        return ProcessedRecord(**self.model_dump())


class RecordPage(Wire):
    records: list[Record]
    next_cursor: str | None


class RecordResyncWire(Wire):
    id: str
    record_type: RecordType
    record_id: str
    status: SyncStatus
    created_at: UtcDateTime
    finished_at: UtcDateTime | None
    error: str | None

    def domain(self) -> RecordResync:
        return RecordResync(**self.model_dump())


W = TypeVar("W", bound=Wire)


def parse(model: type[W], body: Any) -> W:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise UpstreamError(
            f"The portal answered in an unexpected shape ({where}: {problem['msg']})",
            system=SYSTEM,
        ) from None


# Error answers: {"error": {"code", "message", ...}}.
def error_field(response: httpx.Response, name: str) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    value = error.get(name) if isinstance(error, dict) else None
    return value if isinstance(value, str) else None


def error_message(response: httpx.Response, method: str, path: str) -> str:
    message = error_field(response, "message")
    return message or f"{method} {path} answered HTTP {response.status_code}"


def context(response: httpx.Response) -> dict[str, Any]:
    return {
        "system": SYSTEM,
        "status": response.status_code,
        "code": error_field(response, "code"),
        "request_id": response.headers.get("X-Request-Id"),
    }
