"""Resync jobs: the domain view of a row in ``resync_jobs``, moved through explicit states."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from services.errors import BotError
from services.models import RecordType, UtcDateTime

PENDING_THREAD = "pending"
"""A claimed job's ``thread_ts`` (and ``root_ts``, for a root kept up to date) until its root
message is posted and recorded."""


class JobKind(StrEnum):
    RECORD = "record"
    FULL = "full"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED)


ALLOWED: dict[JobState, set[JobState]] = {
    JobState.QUEUED: {JobState.RUNNING, JobState.FAILED},
    JobState.RUNNING: {JobState.RUNNING, JobState.VERIFYING, JobState.DONE, JobState.FAILED},
    JobState.VERIFYING: {JobState.DONE, JobState.FAILED},
    JobState.DONE: set(),
    JobState.FAILED: set(),
}


class Outcome(StrEnum):
    FIXED = "fixed"
    """Both sides agree after the resync."""
    STILL_WRONG = "still_wrong"
    """The resync finished but the balances still differ."""
    COMPLETED = "completed"
    """A resync with nothing to verify (company, contact, full resync with no invoice)."""
    RESYNC_FAILED = "resync_failed"
    TIMED_OUT = "timed_out"
    ERROR = "error"
    REFUSED = "refused"
    """The guard refused the write: nothing was sent to the portal."""


class Job(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    kind: JobKind
    record_type: RecordType
    target: str
    """Invoice number, company id or contact id; the integration id for a full resync."""
    invoice: str | None = None
    """The invoice in question, verified at the end (record resync of an invoice, or a full
    resync started from an invoice's context)."""
    integration_id: str | None = None
    sync_from: date | None = None
    requested_by: str
    channel: str
    thread_ts: str
    progress_ts: str | None = None
    root_ts: str | None = None
    state: JobState
    portal_ref: str | None = None
    acknowledged: str | None = None
    """The fingerprint of the amounts the requester acknowledged (services.guard)."""
    portal_requested_at: UtcDateTime | None = None
    """When the portal was asked to resync (set before asking: after a crash the request may
    have reached the portal although ``portal_ref`` was never saved)."""
    outcome: Outcome | None = None
    detail: str | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    finished_at: UtcDateTime | None = None

    @property
    def active_key(self) -> str:
        return active_key(self.kind, self.record_type, self.target)


def active_key(kind: JobKind, record_type: RecordType, target: str) -> str:
    """Two unfinished jobs with the same key cannot exist: one click, one resync."""
    return f"{kind.value}:{record_type.value}:{target}"


class AlreadyRunning(BotError):
    """A resync of the same target is queued or running."""

    def __init__(self, job: Job) -> None:
        super().__init__("A resync of that is already running.")
        self.job = job


class InvalidTransition(Exception):
    pass


def check_transition(current: JobState, new: JobState) -> None:
    if new not in ALLOWED[current]:
        raise InvalidTransition(f"{current} -> {new}")
