"""Starting resyncs from Slack: once only, in a thread, allowed to the right people."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.bootstrap import Container
from bot.context import Caller
from bot.flows.origin import ask_acknowledgement, close_question, replace_origin_buttons
from bot.flows.replicas import reporter, resume_jobs, spawn_job
from commands.actions import Origin, origin_of
from commands.blocks import Message, check_message, context, error_message, section
from commands.format import escape
from commands.guard_blocks import full_resync_question
from commands.resync_blocks import job_title, replace_actions
from services.check import pick_integration
from services.comparison import Comparison, Verdict
from services.errors import BotError, NotAllowedError, UsageError
from services.jobs import PENDING_THREAD, AlreadyRunning, Job, JobKind, Outcome, active_key
from services.models import Integration, RecordType
from services.reconcile import choose_sync_date

log = logging.getLogger(__name__)
__all__ = ["resume_jobs", "run_job"]


def run_job(deps: Container, job: Job) -> None:
    """Start a job this replica created (and so holds the claim on) as a long job: the
    request's work ends here, and its slot is free for the next request."""
    spawn_job(deps, job)


async def tell_already_running(deps: Container, caller: Caller, job: Job) -> None:
    link = await permalink(deps, job.channel, job.thread_ts)
    where = f"<{link}|see its thread>" if link else "see its thread"
    await caller.tell(
        **error_message(f"{job_title(job)} is already {job.state.value}: {where}.").as_kwargs()
    )


async def permalink(deps: Container, channel: str, ts: str) -> str | None:
    try:
        response = await deps.slack.chat_getPermalink(channel=channel, message_ts=ts)
    except SlackApiError:
        return None
    link = response.get("permalink")
    return str(link) if link else None


async def create_job(
    deps: Container,
    caller: Caller,
    *,
    root: Callable[[], Awaitable[Message]] | None = None,
    root_is_thread_root: bool = False,
    **fields: Any,
) -> Job | None:
    """A new job, or None (the person told privately) when one is already running.

    ``root``: builds the job's root message; it is posted only once the job is claimed, so
    identical commands at once post one thread and nothing that is deleted again, and once
    only (``JobPoster``: a crash between the post and its record finds it again). The
    job's thread (and, with ``root_is_thread_root``, the root to keep up to date) is that
    message."""
    if root is not None:
        fields["thread_ts"] = PENDING_THREAD
        if root_is_thread_root:
            fields["root_ts"] = PENDING_THREAD
    try:
        job = await deps.jobs.create(requested_by=caller.user_id, **fields)
    except AlreadyRunning as exc:
        await deps.audit.record(
            actor=caller.user_id,
            action=f"resync_{fields['kind'].value}",
            target=str(fields["target"]),
            outcome="already_running",
            detail=exc.job.id,
        )
        await tell_already_running(deps, caller, exc.job)
        return None
    await deps.audit.record(
        actor=caller.user_id,
        action=f"resync_{job.kind.value}",
        target=job.target,
        outcome="started",
        detail=job.id,
    )
    if root is None:
        return job
    try:
        ts = await reporter(deps).poster.post_once(job, "root", await root(), in_thread=False)
    except BaseException:
        await deps.jobs.finish(job_id=job.id, outcome=Outcome.ERROR, detail="root not posted")
        raise
    if root_is_thread_root:
        return await deps.jobs.update(job_id=job.id, thread_ts=ts, root_ts=ts)
    return await deps.jobs.update(job_id=job.id, thread_ts=ts)


async def plain_root(text: str) -> Message:
    return Message(text, [section(text)])


async def resync_invoice_command(deps: Container, caller: Caller, number: str) -> None:
    """`/invoice resync <number>`: a root message with both balances, then the thread; a
    private question first when the resync would take money out of view."""
    key = active_key(JobKind.RECORD, RecordType.INVOICE, number)
    existing = await deps.jobs.find_active(key=key)
    if existing is not None:
        await tell_already_running(deps, caller, existing)
        return
    assessment = await deps.guard.assess_invoice(number)
    comparison = assessment.comparison
    assert comparison is not None
    if comparison.verdict is Verdict.NOT_FOUND:
        raise UsageError(f"Invoice {number} is in neither QuickBooks Online nor the portal.")
    if not assessment.acknowledged(None):
        await ask_acknowledgement(
            deps, caller, assessment, what=f"A resync of invoice {number}", invoice=number
        )
        return
    job = await create_job(
        deps,
        caller,
        root=lambda: invoice_root(deps, caller, comparison),
        root_is_thread_root=True,
        kind=JobKind.RECORD,
        record_type=RecordType.INVOICE,
        target=number,
        invoice=number,
        channel=caller.channel_id,
    )
    if job is not None:
        run_job(deps, job)


async def invoice_root(deps: Container, caller: Caller, comparison: Comparison) -> Message:
    """The invoice's check, without buttons, as the root of a resync's thread."""
    now = deps.clock()
    modified = comparison.accounting.last_updated if comparison.accounting else None
    message = check_message(
        comparison,
        now=now,
        full_resync_since=choose_sync_date(now=now, last_modified=modified),
        requested_by=caller.user_id,
        followups=await deps.followups.open_for(invoice=comparison.number),
    )
    note = f"Record resync requested by <@{caller.user_id}>: progress in the thread."
    root = Message(message.text, [b for b in message.blocks if b.type != "actions"])
    root.blocks.append(context(note))
    return root


async def resync_record_command(
    deps: Container, caller: Caller, record_type: RecordType, record_id: str
) -> None:
    key = active_key(JobKind.RECORD, record_type, record_id)
    existing = await deps.jobs.find_active(key=key)
    if existing is not None:
        await tell_already_running(deps, caller, existing)
        return
    record = await deps.portal.get_record(record_type, record_id)
    if record is None:
        raise BotError(
            f"The portal has no {record_type.value} with id {record_id}: nothing was resynced. "
            "Check the id (the one the portal and QuickBooks use for it)."
        )
    what = f"{record_type.value} *{escape(record.name)}* (id {record_id})"
    text = f"Record resync of {what} requested by <@{caller.user_id}>."
    job = await create_job(
        deps,
        caller,
        root=lambda: plain_root(text),
        kind=JobKind.RECORD,
        record_type=record_type,
        target=record_id,
        channel=caller.channel_id,
    )
    if job is not None:
        run_job(deps, job)


async def resync_invoice_button(
    deps: Container,
    caller: Caller,
    *,
    number: str,
    message: dict[str, Any],
    root: str | None,
    ack: str | None = None,
    origin: Origin | None = None,
) -> None:
    """The Resync invoice button (and Resync anyway, with ``ack``), on a check message,
    a digest line, an alert or in a thread: the guard re-reads the evidence first.
    ``origin``: the message whose button led to the guard's question, if any."""
    message_ts = str(message.get("ts", ""))
    thread_ts = str(message.get("thread_ts") or message_ts) or root
    existing = await deps.jobs.find_active(
        key=active_key(JobKind.RECORD, RecordType.INVOICE, number)
    )
    if existing is not None:
        await tell_already_running(deps, caller, existing)
        return
    assessment = await deps.guard.assess_invoice(number)
    if not assessment.acknowledged(ack):
        await ask_acknowledgement(
            deps,
            caller,
            assessment,
            what=f"A resync of invoice {number}",
            invoice=number,
            root=root or thread_ts,
            origin=origin_of(message),
        )
        return
    comparison = assessment.comparison
    assert comparison is not None
    job = await create_job(
        deps,
        caller,
        # Pressed in a private message with no thread behind it: the job starts one.
        root=None if thread_ts else (lambda: invoice_root(deps, caller, comparison)),
        root_is_thread_root=True,
        kind=JobKind.RECORD,
        record_type=RecordType.INVOICE,
        target=number,
        invoice=number,
        channel=caller.channel_id,
        thread_ts=thread_ts,
        root_ts=root or (thread_ts if thread_ts == message_ts else None),
        acknowledged=assessment.fingerprint,
    )
    if job is None:
        return
    note = f"Record resync started by <@{caller.user_id}>"
    await replace_buttons(deps, caller.channel_id, message, note)
    await replace_origin_buttons(deps, caller.channel_id, origin, note)
    if ack is not None and not message_ts:  # answered in the guard's private question
        await close_question(caller, note)
    run_job(deps, job)


async def may_full_resync(deps: Container, user_id: str) -> bool:
    users, groups = deps.settings.full_resync_users, deps.settings.full_resync_groups
    if not users and not groups:
        return True
    if user_id in users:
        return True
    for group in groups:
        try:
            response = await deps.slack.usergroups_users_list(usergroup=group)
        except SlackApiError:
            log.warning("could not read the members of user group %s", group)
            continue
        if user_id in (response.get("users") or []):
            return True
    return False


async def integration_for(deps: Container, invoice: str | None) -> Integration:
    integrations = await deps.portal.list_integrations()
    wanted = deps.settings.portal_integration_id
    if invoice is not None and wanted is None:
        mirrored = await deps.portal.get_invoice(invoice)
        wanted = mirrored.integration_id if mirrored else None
    integration = pick_integration(integrations, wanted)
    if integration is None:
        raise UsageError("The portal has no integration to resync.")
    return integration


async def start_full_resync(
    deps: Container,
    caller: Caller,
    *,
    since: date,
    invoice: str | None,
    thread_ts: str | None,
    root_ts: str | None = None,
    clicked: dict[str, Any] | None = None,
    ack: str | None = None,
    typed: bool = False,
    origin: Origin | None = None,
) -> None:
    """Full integration resync from ``since``; a root message first when there is no thread.

    The guard lists what the run re-reads first: anything it would take out of view (or a
    date more than a year back) is asked about privately, and ``ack`` must name exactly
    that. A ``typed`` command always gets the private question with a Start button."""
    if not await may_full_resync(deps, caller.user_id):
        await deps.audit.record(
            actor=caller.user_id, action="resync_full", target=invoice or "", outcome="refused"
        )
        raise NotAllowedError(
            "Full integration resyncs are limited to the people named by the admins. "
            "Ask one of them, or resync the single invoice instead."
        )
    if since > deps.clock().date():
        raise UsageError(
            f"The sync date {since:%b %d, %Y} is in the future: pick today or earlier."
        )
    integration = await integration_for(deps, invoice)
    existing = await deps.jobs.find_active(
        key=active_key(JobKind.FULL, RecordType.INVOICE, integration.id)
    )
    if existing is not None:
        await tell_already_running(deps, caller, existing)
        return
    assessment = await deps.guard.assess_full(integration.id, since)
    if not assessment.acknowledged(ack):
        await ask_acknowledgement(
            deps,
            caller,
            assessment,
            what=f"A full resync of {escape(integration.name)} from {since:%b %d, %Y}",
            invoice=invoice,
            since=since,
            root=root_ts,
            origin=origin_of(clicked or {}),
        )
        return
    if typed:
        question = full_resync_question(assessment, integration_name=integration.name)
        await caller.tell(**question.as_kwargs())
        return
    text = (
        f"Full resync of *{escape(integration.name)}* from {since:%b %d, %Y}, "
        f"requested by <@{caller.user_id}>: progress in the thread."
    )
    job = await create_job(
        deps,
        caller,
        root=(lambda: plain_root(text)) if thread_ts is None else None,
        kind=JobKind.FULL,
        record_type=RecordType.INVOICE,
        target=integration.id,
        integration_id=integration.id,
        sync_from=since,
        invoice=invoice,
        channel=caller.channel_id,
        thread_ts=thread_ts or PENDING_THREAD,
        root_ts=root_ts,
        acknowledged=assessment.fingerprint,
    )
    if job is None:
        return
    note = f"Full integration resync from {since:%b %d} started by <@{caller.user_id}>"
    if clicked is not None:
        await replace_buttons(deps, caller.channel_id, clicked, note)
    await replace_origin_buttons(deps, caller.channel_id, origin, note)
    if ack is not None and clicked is not None and not clicked.get("ts"):
        await close_question(caller, note)  # answered in the guard's private question
    run_job(deps, job)


async def replace_buttons(
    deps: Container, channel: str, message: dict[str, Any], note: str
) -> None:
    blocks = message.get("blocks")
    ts = message.get("ts")
    if not isinstance(blocks, list) or not ts:
        return
    try:
        await deps.pacer.wait(channel)
        await deps.slack.chat_update(
            channel=channel,
            ts=str(ts),
            text=str(message.get("text") or note),
            blocks=replace_actions(blocks, note),
        )
    except SlackApiError as exc:
        log.warning("could not replace the buttons: %s", exc.response.get("error"))
