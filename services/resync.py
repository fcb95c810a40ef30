"""Use cases: record resync and full integration resync, verified, reported, durable.

The runner talks to the ports, the job store and a reporter; never to Slack. A job can be
run again after a restart: it re-attaches to the portal's run instead of starting another.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar

from services.comparison import DEFAULT_MONEY_TOLERANCE, Comparison, Verdict
from services.errors import UpstreamError, UsageError, in_words
from services.followups import FollowUp, FollowUpStore, check_followed
from services.guard import Assessment, EvidenceUnavailable, NeedsAcknowledgement, WriteGuard
from services.jobs import Job, JobKind, JobState, Outcome
from services.models import ProcessedRecord, RecordResync, RecordType, SyncRun, SyncStatus, utcnow
from services.ports import AccountingSystem, BillingPortal, JobStore

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ResyncResult:
    outcome: Outcome
    comparison: Comparison | None = None
    error: str | None = None
    run: SyncRun | None = None
    assessment: Assessment | None = None
    """What the guard found (a refusal that asks for an acknowledgement)."""
    followups: tuple[FollowUp, ...] = ()
    """The invoice's money still to account for, after the verification."""


def portal_failure(reason: str | None) -> str:
    """The portal's reason for a failed resync, in words (its own text stays in the log)."""
    text = (reason or "").lower()
    if "610" in text or "not found" in text:
        return (
            "QuickBooks Online no longer has the record the portal links to (deleted or "
            "recreated there)"
        )
    if "401" in text or "auth" in text or "token" in text:
        return "the portal could not sign in to QuickBooks Online"
    return "the portal gave no reason it could share; its Sync History has the details"


class Refused(Exception):
    """The guard did not let the write through: nothing was sent to the portal."""

    def __init__(self, message: str, assessment: Assessment | None) -> None:
        super().__init__(message)
        self.message = message
        self.assessment = assessment


class ResyncReporter(Protocol):
    """Where a job's progress goes (a Slack thread in the bot)."""

    async def progress(self, job: Job, *, status: str, elapsed: timedelta) -> Job: ...

    async def processed(self, job: Job, run: SyncRun, records: list[ProcessedRecord]) -> None: ...

    async def acknowledged(self, job: Job, followups: list[FollowUp]) -> None:
        """The amounts the requester acknowledged, now follow-ups (before the write)."""
        ...

    async def finished(self, job: Job, result: ResyncResult) -> None: ...


@dataclass(frozen=True)
class PollPolicy:
    interval: float = 2.0
    max_interval: float = 10.0
    backoff: float = 1.5
    timeout: float = 900.0
    request_grace: float = 60.0
    """How long a resumed job watches for a record resync its predecessor may have asked
    for (crashed before saving the resync's id) before asking the portal again."""


class ResyncTimeout(Exception):
    pass


@dataclass
class ResyncRunner:
    accounting: AccountingSystem
    portal: BillingPortal
    jobs: JobStore
    guard: WriteGuard
    """Every write to the portal passes it first (services.guard)."""
    followups: FollowUpStore
    tolerance: Decimal = DEFAULT_MONEY_TOLERANCE
    """Differences up to this are rounding: a resync that leaves one has still fixed it."""
    poll: PollPolicy = field(default_factory=PollPolicy)
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def run(self, job: Job, reporter: ResyncReporter) -> Job:
        """Take ``job`` to its end, whatever state it was left in."""
        try:
            if job.state is JobState.QUEUED:
                if job.progress_ts is None:
                    job = await reporter.progress(job, status="queued", elapsed=timedelta())
                job = await self.jobs.update(job_id=job.id, state=JobState.RUNNING)
            if job.state is JobState.RUNNING:
                job, result = await self._resync(job, reporter)
                if result is not None:
                    return await self._finish(job, result, reporter)
            return await self._verify(job, reporter)
        except Refused as exc:
            result = ResyncResult(Outcome.REFUSED, error=exc.message, assessment=exc.assessment)
            return await self._finish(job, result, reporter)
        except ResyncTimeout:
            limit = self.poll.timeout
            waited = f"{round(limit / 60)} minutes" if limit >= 120 else f"{round(limit)} seconds"
            error = f"The portal did not finish within {waited}."
            return await self._finish(job, ResyncResult(Outcome.TIMED_OUT, error=error), reporter)
        except UpstreamError as exc:
            log.warning("resync %s stopped: %s", job.id, exc)
            result = ResyncResult(Outcome.ERROR, error=in_words(exc))
            return await self._finish(job, result, reporter)

    async def _resync(self, job: Job, reporter: ResyncReporter) -> tuple[Job, ResyncResult | None]:
        if job.kind is JobKind.RECORD:
            resync = await self._record(job, reporter)
            if resync is not None and resync.status is SyncStatus.FAILED:
                log.warning("job %s: the portal's record resync failed: %s", job.id, resync.error)
                return job, ResyncResult(Outcome.RESYNC_FAILED, error=portal_failure(resync.error))
        else:
            run = await self._full(job, reporter)
            job = await self.jobs.get(job_id=job.id) or job
            if run.status is SyncStatus.FAILED:
                log.warning("job %s: the portal's full sync failed: %s", job.id, run.error)
                return job, ResyncResult(
                    Outcome.RESYNC_FAILED, error=portal_failure(run.error), run=run
                )
            records = await self.portal.list_processed_records(run.id)
            await reporter.processed(job, run, records)
        if job.invoice is None:
            return job, ResyncResult(Outcome.COMPLETED)
        job = await self.jobs.update(job_id=job.id, state=JobState.VERIFYING)
        return job, None

    async def _record(self, job: Job, reporter: ResyncReporter) -> RecordResync | None:
        """The portal's record resync, polled to its end; None if a predecessor's request
        (its id lost in a crash) evidently re-read the invoice already."""
        ref = job.portal_ref
        if ref is None:
            if job.portal_requested_at is not None:
                if await self._resynced_since(job, job.portal_requested_at):
                    return None
                log.warning(
                    "job %s: asking the portal again (the first request's id was lost)", job.id
                )
            await self._authorize(job, reporter)
            job = await self.jobs.update(job_id=job.id, portal_requested_at=self.clock())
            # The job's id as the Idempotency-Key: a retried or resumed request gets the
            # portal's first answer, never a second resync.
            started = await self.portal.resync_record(
                job.record_type, job.target, idempotency_key=f"resync-{job.id}"
            )
            job = await self.jobs.update(job_id=job.id, portal_ref=started.id)
            ref = started.id
        resync_id = ref
        return await self._poll(
            job,
            reporter,
            lambda: self.portal.get_record_resync(resync_id),
            lambda r: (r.status.finished, r.status.value, r.created_at),
        )

    async def _full(self, job: Job, reporter: ResyncReporter) -> SyncRun:
        ref = job.portal_ref
        if ref is None:
            assert job.integration_id is not None and job.sync_from is not None
            run = await self._start_or_attach(job.integration_id, job, reporter)
            job = await self.jobs.update(job_id=job.id, portal_ref=run.id)
            ref = run.id
        run_id = ref
        return await self._poll(
            job,
            reporter,
            lambda: self.portal.get_sync_run(run_id),
            lambda r: (r.status.finished, r.status.value, r.started_at or r.created_at),
        )

    async def _authorize(self, job: Job, reporter: ResyncReporter) -> None:
        """The guard, just before the write: the evidence read now, the acknowledged
        amounts opened as follow-ups (and said in the thread), or Refused."""
        try:
            assessment = await self.guard.authorize(job)
        except NeedsAcknowledgement as exc:
            raise Refused(exc.message, exc.assessment) from exc
        except (EvidenceUnavailable, UsageError) as exc:  # e.g. a date the portal refuses
            raise Refused(exc.message, None) from exc
        if not assessment.exposures:
            return
        opened = [
            await self.followups.open(
                invoice=e.invoice, risk=e.risk, acknowledged_by=job.requested_by, job_id=job.id
            )
            for e in assessment.exposures
        ]
        await reporter.acknowledged(job, opened)

    async def _start_or_attach(
        self, integration_id: str, job: Job, reporter: ResyncReporter
    ) -> SyncRun:
        """Start the portal's full sync; if one is already running there, follow it."""
        since = job.sync_from
        assert since is not None
        for run in await self.portal.list_sync_runs(integration_id, limit=5):
            if run.created_at < job.created_at:
                continue
            if not run.status.finished:
                return run  # started by this job before a restart
            if job.portal_requested_at is not None and run.sync_from <= since:
                return run  # started by this job before a crash, and finished since
        await self._authorize(job, reporter)
        await self.jobs.update(job_id=job.id, portal_requested_at=self.clock())
        try:
            return await self.portal.start_sync(
                integration_id, sync_from=since, idempotency_key=f"sync-{job.id}"
            )
        except UpstreamError as exc:
            running_id = getattr(exc, "run_id", None)
            if running_id is None:
                raise
            return await self.portal.get_sync_run(str(running_id))

    async def _poll(
        self,
        job: Job,
        reporter: ResyncReporter,
        fetch: Callable[[], Awaitable[T]],
        describe: Callable[[T], tuple[bool, str, datetime]],
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.poll.timeout
        interval = self.poll.interval
        while True:
            current = await fetch()
            done, status, since = describe(current)
            job = await reporter.progress(job, status=status, elapsed=self.clock() - since)
            if done:
                return current
            if loop.time() >= deadline:
                raise ResyncTimeout
            await self.sleep(min(interval, max(0.0, deadline - loop.time())))
            interval = min(interval * self.poll.backoff, self.poll.max_interval)

    async def _verify(self, job: Job, reporter: ResyncReporter) -> Job:
        number = job.invoice
        assert number is not None
        job = await reporter.progress(job, status="verifying", elapsed=timedelta())
        comparison, still_open = await check_followed(
            number,
            accounting=self.accounting,
            portal=self.portal,
            store=self.followups,
            clock=self.clock,
            tolerance=self.tolerance,
        )
        fixed = comparison.verdict in (Verdict.IN_SYNC, Verdict.ROUNDING)
        outcome = Outcome.FIXED if fixed else Outcome.STILL_WRONG
        result = ResyncResult(outcome, comparison=comparison, followups=tuple(still_open))
        return await self._finish(job, result, reporter)

    async def _resynced_since(self, job: Job, asked_at: datetime) -> bool:
        """Whether the portal re-read the invoice since ``asked_at``, watched for up to
        ``poll.request_grace`` seconds (only invoices say when they were last synced)."""
        if job.record_type is not RecordType.INVOICE:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.poll.request_grace
        while True:
            mirrored = await self.portal.get_invoice(job.target)
            synced = mirrored.last_synced_at if mirrored is not None else None
            if synced is not None and synced >= asked_at:
                return True
            if loop.time() >= deadline:
                return False
            await self.sleep(min(self.poll.interval, max(0.0, deadline - loop.time())))

    async def _finish(self, job: Job, result: ResyncResult, reporter: ResyncReporter) -> Job:
        """Report, then record the end: a replica killed in between leaves the job
        unfinished, and the next one reports it again, which updates the messages already
        posted (the reporter posts each message of a job once) instead of adding to them."""
        state = (
            JobState.DONE
            if result.outcome in (Outcome.FIXED, Outcome.COMPLETED)
            else JobState.FAILED
        )
        ending = job.model_copy(
            update={"state": state, "outcome": result.outcome, "detail": result.error}
        )
        await reporter.finished(ending, result)
        return await self.jobs.finish(job_id=job.id, outcome=result.outcome, detail=result.error)
