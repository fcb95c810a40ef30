"""Database tables (sqlmodel). Times are stored in UTC and come back UTC-aware."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

from services.models import utcnow


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that refuses naive datetimes and always reads back UTC-aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = True, index: bool = False) -> Any:
    return sa.Column(UtcDateTime(), nullable=nullable, index=index)


class OAuthTokenRow(SQLModel, table=True):
    __tablename__ = "oauth_tokens"

    connection: str = Field(primary_key=True, max_length=100)
    access_token: str
    access_token_expires_at: datetime = Field(sa_column=utc_column(nullable=False))
    refresh_token: str
    refresh_token_expires_at: datetime | None = Field(default=None, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column(nullable=False))


class AuditRow(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=utc_column(nullable=False, index=True))
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=200)
    outcome: str = Field(max_length=32)
    detail: str = Field(default="")


class JobRow(SQLModel, table=True):
    """One resync: record or full, moved through explicit states."""

    __tablename__ = "resync_jobs"

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=16)
    record_type: str = Field(max_length=16)
    target: str = Field(max_length=64)
    invoice: str | None = Field(default=None, max_length=64)
    integration_id: str | None = Field(default=None, max_length=64)
    sync_from: date | None = None
    requested_by: str = Field(max_length=64)
    channel: str = Field(max_length=64)
    thread_ts: str = Field(max_length=32)
    progress_ts: str | None = Field(default=None, max_length=32)
    root_ts: str | None = Field(default=None, max_length=32)
    state: str = Field(max_length=16, index=True)
    portal_ref: str | None = Field(default=None, max_length=64)
    acknowledged: str | None = Field(default=None, max_length=32)
    """The fingerprint of the amounts the requester acknowledged a write would take out of
    view (services.guard); None: nothing acknowledged."""
    outcome: str | None = None
    detail: str | None = None
    active_key: str | None = Field(default=None, max_length=120, unique=True)
    """Set while the job is unfinished: a second job for the same target cannot exist."""
    portal_requested_at: datetime | None = Field(default=None, sa_column=utc_column())
    """Set just before asking the portal to resync: after a crash, the request may have
    reached the portal even though ``portal_ref`` was never saved."""
    claimed_by: str | None = Field(default=None, max_length=64)
    """The replica running the job (see SqlJobStore.claim)."""
    lease_until: datetime | None = Field(default=None, sa_column=utc_column())
    attempts: int = Field(default=0)
    """How many times a replica claimed the job."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column(nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=utc_column())


class DigestRunRow(SQLModel, table=True):
    """One discrepancy digest: when, counts, duration, outcome."""

    __tablename__ = "digest_runs"

    id: str = Field(primary_key=True, max_length=36)
    trigger: str = Field(max_length=16)
    """``schedule`` or ``command``."""
    requested_by: str | None = Field(default=None, max_length=64)
    channel: str = Field(max_length=64)
    day: date | None = Field(default=None, index=True)
    """The local day a scheduled digest belongs to (one scheduled digest a day)."""
    state: str = Field(max_length=16, index=True)
    """running, done, failed."""
    started_at: datetime = Field(default_factory=utcnow, sa_column=utc_column(nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=utc_column())
    open_invoices: int | None = None
    discrepancies: int | None = None
    skipped_recent: int | None = None
    amount_at_stake: str | None = Field(default=None, max_length=32)
    """Decimal as text (exact on every database)."""
    duration_seconds: float | None = None
    message_ts: str | None = Field(default=None, max_length=32)
    detail: str | None = None
    rechecks_failed: int | None = None
    """Discrepancies whose cause could not be re-checked (listed without a write button)."""
    carried: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    """JSON: the invoice numbers the next incremental digest reads again (discrepancies and
    invoices left out as recent) and QuickBooks' side of them; None before migration 0008."""
    full_scan: bool | None = None
    """True: every open invoice was listed; False: an incremental digest."""


class LeaseRow(SQLModel, table=True):
    """A named lease held by one replica until it expires (a crashed holder loses it)."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=120)
    holder: str = Field(max_length=64)
    expires_at: datetime = Field(sa_column=utc_column(nullable=False))


class PaymentAlertRow(SQLModel, table=True):
    """A failed portal payment the bot has alerted about (each is alerted once)."""

    __tablename__ = "payment_alerts"

    payment_id: str = Field(primary_key=True, max_length=64)
    invoice_number: str = Field(max_length=64)
    reference: str = Field(max_length=64)
    amount: str = Field(max_length=32)
    """Decimal as text (exact on every database)."""
    error: str | None = None
    transferred_at: datetime | None = Field(default=None, sa_column=utc_column())
    channel: str = Field(max_length=64)
    message_ts: str | None = Field(default=None, max_length=32)
    alerted_at: datetime = Field(default_factory=utcnow, sa_column=utc_column(nullable=False))


class FollowUpRow(SQLModel, table=True):
    """Money a resync took out of view (or still unaccounted for): open until the evidence
    shows it accounted for."""

    __tablename__ = "follow_ups"

    id: int | None = Field(default=None, primary_key=True)
    invoice: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=32)
    reference: str = Field(max_length=64)
    amount: str = Field(max_length=32)
    """Decimal as text (exact on every database)."""
    what: str
    acknowledged_by: str = Field(max_length=64)
    job_id: str | None = Field(default=None, max_length=36)
    open_key: str | None = Field(default=None, max_length=200, unique=True)
    """invoice|kind|reference while open: the same money is followed up once."""
    opened_at: datetime = Field(default_factory=utcnow, sa_column=utc_column(nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=utc_column())
    closed_because: str | None = None
    closed_by: str | None = Field(default=None, max_length=64)
    """The Slack user who marked it accounted for by hand; None when the evidence closed it."""


class QboEventRow(SQLModel, table=True):
    """A QuickBooks change event (webhook or CDC), stored before the webhook is answered;
    deduplicated by the event's id."""

    __tablename__ = "qbo_events"

    event_id: str = Field(primary_key=True, max_length=200)
    realm_id: str = Field(max_length=64)
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    operation: str = Field(max_length=32)
    occurred_at: datetime | None = Field(default=None, sa_column=utc_column())
    received_at: datetime = Field(default_factory=utcnow, sa_column=utc_column(nullable=False))
    processed_at: datetime | None = Field(default=None, sa_column=utc_column(index=True))
    claimed_until: datetime | None = Field(default=None, sa_column=utc_column())
    """A replica acting on it until then (or, after a failure, when to try again)."""
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    """Times acting on it failed other than by a system not answering."""


class WatchRecheckRow(SQLModel, table=True):
    """An invoice marked for a re-check once the portal has had time to sync (one per
    invoice however many events touch it)."""

    __tablename__ = "watch_rechecks"

    invoice_number: str = Field(primary_key=True, max_length=64)
    due_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    marked_at: datetime = Field(sa_column=utc_column(nullable=False))
    reason: str = Field(default="", max_length=200)
    claimed_until: datetime | None = Field(default=None, sa_column=utc_column())
    """A replica re-checking it until then; the row goes once its alert has gone out."""
    changed_at: datetime | None = Field(default=None, sa_column=utc_column())
    """The last change that marked it (``marked_at`` is the first)."""


class WatchAlertRow(SQLModel, table=True):
    """The alert the watch posted about an invoice (updated in place, never posted twice),
    or a collision it announced (key ``collision:<qbo payment id>:<portal payment id>``)."""

    __tablename__ = "watch_alerts"

    key: str = Field(primary_key=True, max_length=200)
    channel: str = Field(max_length=64)
    message_ts: str | None = Field(default=None, max_length=32)
    alerted_at: datetime = Field(sa_column=utc_column(nullable=False))


class WatchMarkRow(SQLModel, table=True):
    """A named point in time the watch keeps (the last change seen, the last delivery)."""

    __tablename__ = "watch_marks"

    name: str = Field(primary_key=True, max_length=64)
    at: datetime = Field(sa_column=utc_column(nullable=False))


class FixProposalRow(SQLModel, table=True):
    """A fix in QuickBooks proposed in Slack, and its approval and application
    (services.fixes). ``open_key`` (the invoice) is set while the proposal is open: one open
    proposal per invoice, whatever the number of replicas."""

    __tablename__ = "fix_proposals"

    id: str = Field(primary_key=True, max_length=36)
    invoice: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=32)
    state: str = Field(max_length=16, index=True)
    fix: str = Field()
    """The Fix as JSON: what the evidence called for when it was proposed."""
    proposed_by: str = Field(max_length=64)
    decided_by: str | None = Field(default=None, max_length=64)
    channel: str = Field(max_length=64)
    thread_ts: str = Field(max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    open_key: str | None = Field(default=None, max_length=80, unique=True)
    result: str | None = Field(default=None)
    """Intuit's answer to the write (WriteResult as JSON)."""
    detail: str | None = Field(default=None)
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_column=utc_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column(nullable=False))
    expires_at: datetime = Field(sa_column=utc_column(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column(nullable=False))


class JobMessageRow(SQLModel, table=True):
    """A message a resync job posts (its outbox): written before the post, its ``ts`` after.
    A row without ``ts`` after a crash: the message may be in Slack already (found there by
    its metadata, services.storage.outbox)."""

    __tablename__ = "job_messages"

    job_id: str = Field(primary_key=True, max_length=36)
    role: str = Field(primary_key=True, max_length=32)
    """root, progress, acknowledged, processed, outcome."""
    ts: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column(nullable=False))
