"""Running resync jobs when several replicas share the database.

A job runs only in the replica that holds its claim (a lease on the row, see
``services.storage.claims``). A new job is claimed by the replica that created it; the
runner renews the claim while it works (the heartbeat) and stops if another replica took
the job over. Every replica sweeps for jobs whose claim ran out (their replica crashed or
shut down) at start and then every ``job_sweep_seconds``, and finishes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from bot.bootstrap import Container
from bot.errors import log_unexpected, reply_for
from bot.identity import keep_identity
from bot.job_posts import JobPoster
from bot.progress import SlackThreadReporter
from bot.waits import waits_in_thread
from services.jobs import InvalidTransition, Job, Outcome
from services.resync import ResyncResult
from services.storage.jobs import Claim, ClaimLost
from services.storage.leases import keep_renewed
from services.storage.outbox import JobMessages

log = logging.getLogger(__name__)


def reporter(deps: Container) -> SlackThreadReporter:
    poster = JobPoster(
        slack=deps.slack, outbox=JobMessages(deps.db), pacer=deps.pacer, worker=deps.jobs.worker
    )
    return SlackThreadReporter(slack=deps.slack, jobs=deps.jobs, pacer=deps.pacer, poster=poster)


async def run_job(deps: Container, job: Job) -> Job:
    """The job's thread first (its root may not have been recorded), then the runner."""
    thread = reporter(deps)
    job = await thread.ensure_thread(job)
    with waits_in_thread(deps, channel=job.channel, user=job.requested_by, thread_ts=job.thread_ts):
        return await deps.runner.run(job, thread)


async def run_claimed(deps: Container, job: Job) -> Job:
    """Take ``job`` (claimed by this replica) to its end, renewing the claim meanwhile."""
    if job.id in deps.running_jobs:
        return job  # already running in this replica
    deps.running_jobs.add(job.id)
    lost = asyncio.Event()
    work = asyncio.create_task(run_job(deps, job), name=f"run:{job.id}")
    beat = asyncio.create_task(heartbeat(deps, job.id, work, lost), name=f"beat:{job.id}")
    try:
        return await work
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if lost.is_set() and task is not None and not task.cancelling():
            return job
        raise
    except ClaimLost:
        log.warning("job %s was taken over by another replica: stopped here", job.id)
        return job
    except Exception as exc:
        return await _end_with_error(deps, job, exc)
    finally:
        beat.cancel()
        if not work.done():
            work.cancel()
            await asyncio.wait([work])
        deps.running_jobs.discard(job.id)
        if work.cancelled() and not lost.is_set():
            # Shutting down: hand the job to another replica at once.
            with contextlib.suppress(Exception):
                await asyncio.shield(deps.jobs.release(job_id=job.id))


async def _end_with_error(deps: Container, job: Job, exc: Exception) -> Job:
    """A failure nobody planned for ends the job (not left running for the sweep to retry
    after its lease): the thread says so with a reference id; the log has the traceback."""
    reference = log_unexpected(exc, f"resync job {job.id} failed")
    error = f"Something went wrong on my side (reference `{reference}`)"
    try:
        ended = await deps.jobs.finish(job_id=job.id, outcome=Outcome.ERROR, detail=error)
    except (ClaimLost, InvalidTransition) as lost:  # taken over, or it had ended already
        log.warning("job %s not ended here: %s", job.id, type(lost).__name__)
        return job
    await reporter(deps).finished(ended, ResyncResult(Outcome.ERROR, error=error))
    return ended


async def heartbeat(
    deps: Container, job_id: str, work: asyncio.Future[Any], lost: asyncio.Event
) -> None:
    """Renew the job's claim every lease/3 while ``work`` runs; stop the work when the claim
    is lost, or could not be renewed until a sixth of the lease was left."""
    lease = deps.jobs.lease
    reason = await keep_renewed(
        lambda: deps.jobs.renew(job_id=job_id),
        ttl=lease,
        clock=deps.clock,
        sleep=deps.sleep,
        what=f"the claim on job {job_id}",
        margin=lease / 6,
    )
    if work.done():
        return
    log.warning("job %s stopped here: %s", job_id, reason)
    lost.set()
    work.cancel()


def spawn_job(deps: Container, job: Job) -> None:
    async def on_error(exc: BaseException) -> None:
        message = reply_for(exc, deps.metrics)
        await deps.slack.chat_postMessage(
            channel=job.channel, thread_ts=job.thread_ts, **message.as_kwargs()
        )

    deps.tasks.spawn_long(run_claimed(deps, job), name=f"job:{job.id}", on_error=on_error)


async def sweep(deps: Container, *, own: bool = False) -> int:
    """Claim and start every job whose claim ran out (``own``: and this replica's own, at
    start); give up on a job claimed too often."""
    claims = await deps.jobs.claim_due(skip=set(deps.running_jobs), own=own)
    for claim in claims:
        job = claim.job
        if claim.attempts > deps.settings.job_max_attempts:
            deps.tasks.spawn_long(give_up(deps, claim), name=f"give-up:{job.id}")
            continue
        log.info("resuming %s job %s (%s)", job.kind.value, job.id, job.state.value)
        spawn_job(deps, job)
    return len(claims)


async def give_up(deps: Container, claim: Claim) -> None:
    error = f"The bot stopped {claim.attempts - 1} times while running it; not trying again."
    log.error("job %s: %s", claim.job.id, error)
    thread = reporter(deps)
    await thread.ensure_thread(claim.job)
    job = await deps.jobs.finish(job_id=claim.job.id, outcome=Outcome.ERROR, detail=error)
    await thread.finished(job, ResyncResult(Outcome.ERROR, error=error))


async def resume_jobs(deps: Container) -> int:
    """At start: finish the jobs nobody holds, then keep sweeping in the background."""
    resumed = await sweep(deps, own=True)
    if deps.sweeper is None and deps.settings.job_sweep_seconds > 0:
        deps.sweeper = asyncio.create_task(sweep_forever(deps), name="job-sweeper")
    return resumed


async def sweep_forever(deps: Container) -> None:
    """Every ``job_sweep_seconds``: keep this replica's name its own, then sweep."""
    while True:
        await deps.sleep(deps.settings.job_sweep_seconds)
        try:
            if deps.identity is not None:
                await keep_identity(deps.db, deps.identity, ttl=deps.jobs.lease, clock=deps.clock)
            await sweep(deps)
        except Exception:
            log.warning("job sweep failed", exc_info=True)
