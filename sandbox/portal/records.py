"""The fake portal's records: invoices, companies, contacts, integrations, sync runs,
record resyncs, injected faults and its QuickBooks connection."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

CENT = Decimal("0.01")

InvoiceStatus = Literal["open", "paid", "void"]
RunStatus = Literal["queued", "running", "completed", "failed"]
RecordKind = Literal["invoice", "company", "contact"]
Action = Literal["created", "updated", "unchanged", "failed"]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Invoice:
    number: str
    external_id: str | None
    customer_id: str | None
    customer_name: str
    total: Decimal
    balance: Decimal
    currency: str | None
    status: InvoiceStatus
    integration_id: str
    last_synced_at: datetime | None
    updated_at: datetime


@dataclass
class Company:
    id: str
    name: str
    updated_at: datetime


@dataclass
class Contact:
    id: str
    company_id: str
    name: str


@dataclass
class Integration:
    id: str
    name: str
    provider: str
    kind: Literal["accounting", "psa"]
    last_successful_sync_at: datetime | None
    connected_at: datetime | None = None
    """When the integration was connected: the portal holds nothing from before it."""


@dataclass(frozen=True)
class ProcessedRecord:
    record_type: RecordKind
    number: str
    action: Action
    balance_before: Decimal | None = None
    balance_after: Decimal | None = None
    message: str | None = None


@dataclass
class SyncRun:
    id: str
    integration_id: str
    sync_from: date
    created_at: datetime
    status: RunStatus = "queued"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    records: list[ProcessedRecord] = field(default_factory=list)
    error: str | None = None


@dataclass
class RecordResync:
    id: str
    record_type: RecordKind
    record_id: str
    created_at: datetime
    status: RunStatus = "queued"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None


@dataclass
class Fault:
    """One injected failure: an HTTP status (500, 429, ...), a request that hangs, or a
    connection dropped halfway through the answer."""

    kind: Literal["status", "timeout", "drop"]
    status: int = 500
    retry_after: int | None = None
    path: str | None = None
    """Only requests whose path starts with this (e.g. ``/api/v1/record-resyncs``)."""

    def applies_to(self, path: str) -> bool:
        return self.path is None or path.startswith(self.path)


@dataclass
class QboConnection:
    """How the portal reaches QuickBooks Online. The refresh token rotates: the newest is kept."""

    base_url: str
    token_url: str
    realm_id: str
    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str | None = None
    access_token_expires_at: float = 0.0
    """In ``loop.time()`` seconds."""

    def __repr__(self) -> str:
        return f"QboConnection(base_url={self.base_url!r}, realm_id={self.realm_id!r}, ...)"


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"
