"""`/invoice digest` and the scheduled digest: run the scan, then post the summary and its
thread. Each run is stored; a running digest is not started twice."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError

from bot.bootstrap import Container
from bot.context import Caller
from bot.errors import reply_for
from bot.flows.check import check_or_none
from commands.blocks import Message, error_message
from commands.digest_blocks import (
    BUTTONED,
    IN_PROGRESS,
    NOW_IN_SYNC,
    RECHECK_FAILED,
    discrepancies_csv,
    discrepancy_message,
    failed_message,
    followups_message,
    needs_csv,
    summary_message,
    thread_messages,
)
from commands.digest_causes import explained_messages
from commands.format import fmt_moment
from services.causes import Cause
from services.comparison import Comparison
from services.digest import (
    DigestAlreadyDone,
    DigestAlreadyRunning,
    DigestFailed,
    DigestResult,
    DigestRun,
    Discrepancy,
    Trigger,
)
from services.digest_incremental import ChainBroken, run_incremental_digest
from services.digest_scan import run_digest
from services.errors import UpstreamError
from services.jobs import Job, JobKind
from services.storage import leases
from services.storage.digests import Chain
from services.storage.watch import WatchStore

log = logging.getLogger(__name__)
CDC_DAYS = 30
OVERLAP = timedelta(minutes=1)
"""Read a minute before the last digest's cutoff: times QuickBooks rounds to the second."""


async def scan(deps: Container) -> DigestResult:
    """Every open invoice compared (with the bot's settings and clock): only what changed
    since the last complete digest when the chain of changes holds (``_chain``)."""
    recent = timedelta(minutes=deps.settings.digest_recent_minutes)
    accounting, portal = deps.accounting, deps.portal
    tolerance, clock = deps.settings.money_tolerance, deps.clock
    found = await _chain(deps, recent)
    if found is not None:
        since, chain = found
        try:
            return await run_incremental_digest(
                accounting=accounting, portal=portal, since=since, carried=chain.carried,
                known=chain.known, open_invoices=chain.last.open_invoices or 0,
                recent=recent, tolerance=tolerance, clock=clock,
            )  # fmt: skip
        except ChainBroken as exc:
            log.info("digest: a full scan (%s)", exc)
    return await run_digest(
        accounting=accounting, portal=portal, recent=recent, tolerance=tolerance, clock=clock
    )


async def _chain(deps: Container, recent: timedelta) -> tuple[datetime, Chain] | None:
    """Where an incremental digest starts (since when, and what the last one carries), or
    None for a full scan: no watch, no complete digest, the last full scan DIGEST_FULL_EVERY
    days ago, a gap beyond CDC's 30 days, or a QuickBooks invoice deleted since."""
    every = deps.settings.digest_full_every
    if every <= 0 or deps.watcher is None or deps.watch is None:
        return None
    chain = await deps.digests.chain()
    now = deps.clock()
    if chain is None or chain.last_full_at is None:
        return None
    if now - chain.last_full_at >= timedelta(days=every):
        return None
    last = chain.last
    if now - last.started_at > timedelta(days=CDC_DAYS):
        return None
    try:
        await deps.watch.catch_up("digest")  # deletions since then are stored events
    except UpstreamError as exc:
        log.info("digest: a full scan (the CDC catch-up failed: %s)", exc)
        return None
    # Deletions received before the last digest started were that digest's concern.
    if await WatchStore(deps.db).deleted_since(entity="Invoice", since=last.started_at):
        return None
    return last.started_at - recent - OVERLAP, chain


def local_day(deps: Container, moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(deps.settings.digest_timezone)).date()


def _stale_after(deps: Container) -> timedelta:
    return timedelta(minutes=deps.settings.digest_stale_minutes)


async def digest_command(deps: Container, caller: Caller) -> DigestRun | None:
    """Start the digest now, as a long job; the result goes to the caller's channel."""
    try:
        run = await deps.digests.start(
            trigger=Trigger.COMMAND,
            channel=caller.channel_id,
            requested_by=caller.user_id,
            stale_after=_stale_after(deps),
        )
    except DigestAlreadyRunning as exc:
        await deps.audit.record(
            actor=caller.user_id, action="digest", outcome="already_running", detail=exc.run.id
        )
        since = fmt_moment(exc.run.started_at)
        where = f" in <#{exc.run.channel}>" if exc.run.channel else ""
        text = f"A digest is already running (started {since}{where}): its result will be posted there."
        await caller.tell(**error_message(text).as_kwargs())
        return None
    await deps.audit.record(
        actor=caller.user_id,
        action="digest",
        target=caller.channel_id,
        outcome="started",
        detail=run.id,
    )
    await caller.tell(
        text="Comparing every open invoice in QuickBooks Online and the portal: "
        "the digest will be posted in this channel."
    )

    async def on_error(exc: BaseException) -> None:
        await caller.tell(**reply_for(exc, deps.metrics).as_kwargs())

    deps.tasks.spawn_long(_run_for(deps, caller, run), name=f"digest:{run.id}", on_error=on_error)
    return run


async def _run_for(deps: Container, caller: Caller, run: DigestRun) -> None:
    try:
        await run_and_post(deps, run)
    except SlackApiError as exc:
        if exc.response.get("error") not in ("not_in_channel", "channel_not_found"):
            raise
        await caller.tell(
            **error_message(
                "I cannot post in this channel. Invite me (`/invite @Invoice Resync Bot`) "
                "and run `/invoice digest` again."
            ).as_kwargs()
        )


async def scheduled_digest(deps: Container, *, now: datetime | None = None) -> DigestRun | None:
    """The daily digest into DIGEST_CHANNEL: one per local day (DIGEST_TIMEZONE)."""
    channel = deps.settings.digest_channel
    if not channel:
        log.warning("scheduled digest skipped: DIGEST_CHANNEL is not set")
        return None
    now = now or deps.clock()
    day = local_day(deps, now)
    # One replica runs the day's digest: a lease that a crashed holder loses after its ttl,
    # kept for a day and a half once the digest is done.
    async with leases.hold(
        deps.db,
        name=f"digest:{day.isoformat()}",
        holder=deps.replica,
        ttl=timedelta(minutes=2),
        keep_for=timedelta(hours=36),
        clock=deps.clock,
        sleep=deps.sleep,
    ) as held:
        if not held:
            log.info("scheduled digest of %s: another replica has it", day)
            return None
        return await _scheduled(deps, channel=channel, day=day, now=now)


async def _scheduled(
    deps: Container, *, channel: str, day: date, now: datetime
) -> DigestRun | None:
    try:
        run = await deps.digests.start(
            trigger=Trigger.SCHEDULE,
            channel=channel,
            day=day,
            stale_after=_stale_after(deps),
            now=now,
        )
    except (DigestAlreadyRunning, DigestAlreadyDone) as exc:
        log.info("scheduled digest of %s not started: %s", day, exc.message)
        return None
    return await run_and_post(deps, run)


async def run_and_post(deps: Container, run: DigestRun) -> DigestRun:
    """Scan, post, and record the outcome. A scan that cannot finish is posted as failed."""
    day = local_day(deps, run.started_at)
    began = time.monotonic()
    try:
        result = await scan(deps)
    except DigestFailed as exc:
        deps.metrics.digest_ended(time.monotonic() - began, ok=False)
        log.warning("digest %s failed: %s", run.id, exc.cause)
        reason = f"{exc.cause.system} did not answer as expected ({exc.cause.message})."
        message = failed_message(reason, day=day, requested_by=run.requested_by)
        try:
            ts = await _post(deps, run.channel, message)
        except BaseException:
            await asyncio.shield(deps.digests.finish(run_id=run.id, error=str(exc.cause)))
            raise
        return await deps.digests.finish(run_id=run.id, error=str(exc.cause), message_ts=ts)
    except BaseException as exc:  # cancelled, or a bug: the run must not stay "running"
        await asyncio.shield(deps.digests.finish(run_id=run.id, error=type(exc).__name__))
        raise
    try:
        ts, rechecks_failed = await post_digest(deps, run, result, day=day)
    except BaseException as exc:
        detail = f"posting to Slack failed: {type(exc).__name__}"
        await asyncio.shield(deps.digests.finish(run_id=run.id, result=result, error=detail))
        raise
    deps.metrics.digest_ended(result.duration.total_seconds(), ok=True)
    return await deps.digests.finish(
        run_id=run.id, result=result, message_ts=ts, rechecks_failed=rechecks_failed
    )


async def post_digest(
    deps: Container, run: DigestRun, result: DigestResult, *, day: date
) -> tuple[str, int]:
    """The summary in the channel (money still to account for first), the discrepancies in
    its thread, the CSV when long. Returns the summary's ts and the failed re-checks."""
    channel = run.channel
    now = deps.clock()
    followups = await deps.followups.all_open()
    worst = list(result.discrepancies[:BUTTONED])
    explained = await explain_worst(deps, worst, now=now)
    summary = summary_message(
        result,
        day=day,
        requested_by=run.requested_by,
        causes=explained.causes,
        rechecks_failed=explained.failed,
        followups=followups,
    )
    ts = await _post(deps, channel, summary)
    assert ts is not None
    if followups:
        await _post(deps, channel, followups_message(followups), thread_ts=ts)
    for message in thread_messages(result, now=now, top=explained.messages):
        await _post(deps, channel, message, thread_ts=ts)
    causes = explained.causes
    if needs_csv(result):
        count = len(result.discrepancies)
        await deps.slack.files_upload_v2(
            channel=channel,
            thread_ts=ts,
            content=discrepancies_csv(result.discrepancies, causes=causes),
            filename=f"digest-{day.isoformat()}.csv",
            title=f"All {count:,} discrepancies of the digest of {day:%b %d, %Y}",
        )
    return ts, explained.failed


@dataclass(frozen=True)
class Explained:
    messages: list[Message]
    causes: dict[str, Cause]
    """Each re-checked invoice's cause (for the summary's counts and the CSV)."""
    failed: int
    """Re-checks that could not be read: listed without a write button."""


async def explain_worst(deps: Container, worst: list[Discrepancy], *, now: datetime) -> Explained:
    """The worst discrepancies checked again with their cause, grouped by cause (money at
    risk first) with only the buttons that help. One whose re-check failed says so and gets
    only **Check again**; one inside a resync that is running says so, without buttons."""
    active = await deps.jobs.unfinished()

    async def explain(found: Discrepancy) -> Comparison | None:
        if in_progress(found, active):
            return None
        return await check_or_none(deps, found.number, purpose="digest")

    comparisons = await asyncio.gather(*(explain(found) for found in worst))
    explained = []
    others: list[Message] = []
    failed = 0
    for found, comparison in zip(worst, comparisons, strict=True):
        if in_progress(found, active):
            others.append(discrepancy_message(found, now=now, note=IN_PROGRESS))
        elif comparison is None:
            failed += 1
            others.append(discrepancy_message(found, now=now, note=RECHECK_FAILED))
        elif comparison.diagnosis is None:
            others.append(discrepancy_message(found, now=now, note=NOW_IN_SYNC))
        else:
            explained.append((found, comparison))
    messages = explained_messages(explained, now=now) + others
    causes = {f.number: c.diagnosis.cause for f, c in explained if c.diagnosis is not None}
    return Explained(messages, causes, failed)


def in_progress(found: Discrepancy, active: list[Job]) -> bool:
    """Whether a resync that is running will re-read this invoice."""
    for job in active:
        if job.invoice == found.number or (
            job.kind is JobKind.RECORD and job.target == found.number
        ):
            return True
        if job.kind is JobKind.FULL and job.sync_from is not None:
            changed = found.accounting_changed
            if changed is None or changed.date() >= job.sync_from:
                return True
    return False


async def _post(
    deps: Container, channel: str, message: Message, *, thread_ts: str | None = None
) -> str | None:
    await deps.pacer.wait(channel)
    response = await deps.slack.chat_postMessage(
        channel=channel, thread_ts=thread_ts, **message.as_kwargs()
    )
    ts = response.get("ts")
    return str(ts) if ts else None
