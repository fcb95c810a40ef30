"""The thread reporter: a job's progress as one message edited in place, then the results."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from slack_sdk.web.async_client import AsyncWebClient

from bot.job_posts import JobPoster
from bot.pacer import ChannelPacer
from commands.blocks import Message, check_message, context, section
from commands.followup_text import LISTED
from commands.guard_blocks import acknowledged_message, followups_csv
from commands.resync_blocks import (
    LISTED_RECORDS,
    job_title,
    outcome_message,
    outcome_progress_message,
    processed_records_message,
    progress_message,
    records_csv,
)
from services.followups import FollowUp
from services.jobs import PENDING_THREAD, Job, JobKind, Outcome
from services.models import ProcessedRecord, SyncRun, utcnow
from services.reconcile import choose_sync_date
from services.resync import ResyncResult
from services.storage.jobs import SqlJobStore

log = logging.getLogger(__name__)


def fallback_root(job: Job) -> Message:
    """A root for a job whose request died before posting its own (the check message
    replaces it at the end when the job keeps its root up to date)."""
    text = f"{job_title(job)} requested by <@{job.requested_by}>: progress in the thread."
    return Message(text, [section(text)])


@dataclass
class SlackThreadReporter:
    """Every message it posts goes through ``poster`` (once per job and role)."""

    slack: AsyncWebClient
    jobs: SqlJobStore
    pacer: ChannelPacer
    poster: JobPoster
    _last_status: dict[str, str] = field(default_factory=dict)

    async def ensure_thread(self, job: Job) -> Job:
        """A job whose root was not recorded (its request died around the post): the root
        found in the channel by its metadata, or posted now."""
        if job.thread_ts != PENDING_THREAD:
            return job
        ts = await self.poster.post_once(
            job, "root", fallback_root(job), in_thread=False, refresh=False
        )
        root_ts = ts if job.root_ts == PENDING_THREAD else job.root_ts
        return await self.jobs.update(job_id=job.id, thread_ts=ts, root_ts=root_ts)

    async def progress(self, job: Job, *, status: str, elapsed: timedelta) -> Job:
        message = progress_message(job, status=status, elapsed=elapsed)
        if job.progress_ts is None:
            ts = await self.poster.post_once(job, "progress", message)
            self._last_status[job.id] = status
            return await self.jobs.update(job_id=job.id, progress_ts=ts)
        changed = self._last_status.get(job.id) != status
        if changed:
            await self.pacer.wait(job.channel)
        elif not self.pacer.try_take(job.channel):
            return job  # coalesced: a newer update follows soon
        self._last_status[job.id] = status
        await self._edit(job, job.progress_ts, message)
        return job

    async def processed(self, job: Job, run: SyncRun, records: list[ProcessedRecord]) -> None:
        message = processed_records_message(run, records, invoice=job.invoice)
        await self.poster.post_once(job, "processed", message)
        if len(records) > LISTED_RECORDS:
            await self.poster.upload_once(
                job,
                "processed-file",
                content=records_csv(records),
                filename=f"sync-run-{run.id}-records.csv",
                title=f"Processed records of sync run {run.id} ({len(records)})",
            )

    async def acknowledged(self, job: Job, followups: list[FollowUp]) -> None:
        await self.poster.post_once(job, "acknowledged", acknowledged_message(followups))
        if len(followups) > LISTED:
            await self.poster.upload_once(
                job,
                "acknowledged-file",
                content=followups_csv(followups),
                filename=f"resync-{job.id[:8]}-follow-ups.csv",
                title=f"Money to account for after this resync ({len(followups)})",
            )

    async def finished(self, job: Job, result: ResyncResult) -> None:
        self._last_status.pop(job.id, None)
        assert job.outcome is not None
        if job.progress_ts is not None:
            await self.pacer.wait(job.channel)
            await self._edit(job, job.progress_ts, outcome_progress_message(job, job.outcome))
        escalate_since = None
        if job.kind is JobKind.RECORD and job.invoice is not None:
            comparison = result.comparison
            modified = (
                comparison.accounting.last_updated if comparison and comparison.accounting else None
            )
            escalate_since = choose_sync_date(now=utcnow(), last_modified=modified)
        if job.root_ts is not None and result.comparison is not None:
            await self._refresh_root(job, result)
        # Last: the runner records the end right after it. Killed in between, the job runs
        # again and this message, found by its metadata, is updated, not posted again.
        await self.poster.post_once(
            job,
            "outcome",
            outcome_message(
                job,
                job.outcome,
                comparison=result.comparison,
                error=result.error,
                escalate_since=escalate_since,
                followups=result.followups,
                assessment=result.assessment,
            ),
        )

    async def _refresh_root(self, job: Job, result: ResyncResult) -> None:
        """Keep the check message true: the new verdict, and buttons only if still needed."""
        assert job.root_ts is not None and result.comparison is not None
        comparison = result.comparison
        now = utcnow()
        modified = comparison.accounting.last_updated if comparison.accounting else None
        message = check_message(
            comparison,
            now=now,
            full_resync_since=choose_sync_date(now=now, last_modified=modified),
            requested_by=None,
            followups=result.followups,
        )
        kind = "full integration resync" if job.kind is JobKind.FULL else "record resync"
        fixed = job.outcome is Outcome.FIXED and not result.followups
        note = "Fixed" if fixed else "Checked again"
        message.blocks.append(context(f"{note} after a {kind} requested by <@{job.requested_by}>"))
        await self.pacer.wait(job.channel)
        await self._edit(job, job.root_ts, message)

    async def _edit(self, job: Job, ts: str, message: Message) -> None:
        await self.slack.chat_update(channel=job.channel, ts=ts, **message.as_kwargs())
