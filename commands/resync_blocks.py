"""Block Kit for resync threads: progress, processed records, outcomes. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block

from commands.blocks import Message, context, full_resync_button, section, verdict_line
from commands.followup_text import still_to_account
from commands.format import csv_cell, escape, fmt_duration, fmt_moment, fmt_money
from commands.guard_blocks import acknowledge_button
from services.comparison import Comparison
from services.followups import FollowUp
from services.guard import Assessment
from services.jobs import Job, JobKind, Outcome
from services.models import ProcessedRecord, RecordType, SyncRun

LISTED_RECORDS = 20
"""Processed records listed in the thread; the rest are counted (and uploaded as a file)."""

_STATUS_ICON = {
    "queued": ":hourglass_flowing_sand:",
    "running": ":arrows_counterclockwise:",
    "verifying": ":mag:",
    "completed": ":heavy_check_mark:",
    "failed": ":x:",
}


def job_title(job: Job) -> str:
    if job.kind is JobKind.FULL:
        since = f" from {job.sync_from:%b %d, %Y}" if job.sync_from else ""
        return f"Full integration resync{since}"
    if job.record_type is RecordType.INVOICE:
        return f"Record resync of invoice {job.target}"
    return f"Record resync of {job.record_type.value} {job.target}"


def progress_message(job: Job, *, status: str, elapsed: timedelta) -> Message:
    icon = _STATUS_ICON.get(status, ":arrows_counterclockwise:")
    text = f"{icon} {job_title(job)}: *{status}*"
    if elapsed.total_seconds() >= 1:
        text += f" ({fmt_duration(elapsed)})"
    return Message(
        text=text, blocks=[section(text), context(f"Requested by <@{job.requested_by}>")]
    )


def outcome_progress_message(job: Job, outcome: Outcome) -> Message:
    icon = ":white_check_mark:" if outcome in (Outcome.FIXED, Outcome.COMPLETED) else ":x:"
    words = {
        Outcome.FIXED: "done, fixed",
        Outcome.COMPLETED: "done",
        Outcome.STILL_WRONG: "done, still out of sync",
        Outcome.RESYNC_FAILED: "failed",
        Outcome.TIMED_OUT: "timed out",
        Outcome.ERROR: "stopped",
        Outcome.REFUSED: "not started, nothing sent to the portal",
    }[outcome]
    text = f"{icon} {job_title(job)}: *{words}*"
    return Message(
        text=text, blocks=[section(text), context(f"Requested by <@{job.requested_by}>")]
    )


def processed_records_message(
    run: SyncRun, records: list[ProcessedRecord], *, invoice: str | None
) -> Message:
    counts = Counter((r.record_type.value, r.action) for r in records)
    by_type: dict[str, list[str]] = {}
    for (record_type, action), count in sorted(counts.items()):
        by_type.setdefault(record_type, []).append(f"{count} {action}")
    summary = "; ".join(f"{_plural(t)}: {', '.join(p)}" for t, p in by_type.items()) or "none"
    lines = [f"*Processed records* ({len(records)}): {summary}"]
    if invoice is not None:
        lines.append(invoice_callout(records, invoice))
    changed = [r for r in records if r.action != "unchanged"]
    listed = changed[:LISTED_RECORDS]
    if listed:
        lines.append("\n".join(record_line(r) for r in listed))
    rest = len(records) - len(listed)
    if rest > 0:
        lines.append(
            f"_…and {rest} more{' (unchanged)' if len(changed) <= LISTED_RECORDS else ''}_"
        )
    text = f"Sync run {escape(run.id)}: {len(records)} records processed"
    return Message(text=text, blocks=[section("\n".join(lines[:2])), *_chunks(lines[2:])])


def _plural(record_type: str) -> str:
    return "companies" if record_type == "company" else record_type + "s"


def _chunks(lines: list[str]) -> list[Block]:
    return [section(line) for line in lines if line]


def invoice_callout(records: list[ProcessedRecord], invoice: str) -> str:
    for record in records:
        if record.record_type is RecordType.INVOICE and record.number == invoice:
            detail = record_line(record).split(": ", 1)[1]
            return f":point_right: Invoice {invoice} was processed: {detail}"
    return f":warning: Invoice {invoice} was *not* among the processed records."


def record_line(record: ProcessedRecord) -> str:
    line = f"• {record.record_type.value} {escape(record.number)}: {escape(record.action)}"
    if record.balance_before is not None or record.balance_after is not None:
        before = fmt_money(record.balance_before) if record.balance_before is not None else "—"
        after = fmt_money(record.balance_after) if record.balance_after is not None else "—"
        line += f" ({before} → {after})"
    return line


def records_csv(records: list[ProcessedRecord]) -> str:
    rows = ["record_type,number,action,balance_before,balance_after"]
    for r in records:
        before = "" if r.balance_before is None else str(r.balance_before)
        after = "" if r.balance_after is None else str(r.balance_after)
        rows.append(f"{r.record_type.value},{csv_cell(r.number)},{r.action},{before},{after}")
    return "\n".join(rows) + "\n"


def outcome_message(
    job: Job,
    outcome: Outcome,
    *,
    comparison: Comparison | None,
    error: str | None,
    escalate_since: date | None,
    followups: Sequence[FollowUp] = (),
    assessment: Assessment | None = None,
) -> Message:
    """The thread's last word on a job, with the escalation when it did not help. Never a
    bare "Fixed." while money the resync took out of view is still to account for."""
    blocks: list[Block] = []
    if outcome is Outcome.REFUSED:
        # The guard's reason names payments and credits by their vendor references.
        text = f":no_entry: *Nothing was sent to the portal.* {escape(error or '')}".strip()
        blocks.append(section(text))
        if assessment is not None and assessment.exposures:
            blocks.append(
                section(
                    "Fix it in QuickBooks first, or resync anyway: each amount then stays a "
                    "follow-up until QuickBooks shows it accounted for."
                )
            )
            button = acknowledge_button(
                assessment,
                invoice=job.invoice,
                since=job.sync_from if job.kind is JobKind.FULL else None,
                root=job.root_ts,
            )
            blocks.append(ActionsBlock(block_id="acknowledge", elements=[button]))
        return Message(text=text, blocks=blocks)
    if outcome is Outcome.FIXED and followups and comparison is not None:
        text = f":warning: *Balances match*; {still_to_account(followups)}."
    elif outcome is Outcome.FIXED and comparison is not None and comparison.accounting:
        acct = comparison.accounting
        text = (
            f":white_check_mark: *Fixed.* Invoice {job.invoice} now shows "
            f"{fmt_money(acct.balance, acct.currency)} in the portal, matching QuickBooks Online."
        )
    elif outcome is Outcome.COMPLETED:
        text = f":white_check_mark: {job_title(job)} finished."
    elif outcome is Outcome.STILL_WRONG and comparison is not None:
        text = f":x: *Still out of sync after the resync.* {verdict_line(comparison)}"
    elif outcome is Outcome.RESYNC_FAILED:
        text = f":x: *The portal's resync failed*: {error or 'no reason given'}."
    elif outcome is Outcome.TIMED_OUT:
        text = f":hourglass: *Timed out.* {error or ''} Check the portal's Sync History."
    else:
        text = f":x: *The resync stopped*: {(error or 'unknown error').rstrip('.')}."
    blocks.append(section(text))
    if outcome in (Outcome.STILL_WRONG, Outcome.RESYNC_FAILED, Outcome.TIMED_OUT, Outcome.ERROR):
        if job.kind is JobKind.RECORD and job.invoice is not None and escalate_since is not None:
            blocks.append(
                section(
                    "A full integration resync re-reads everything changed since "
                    f"{escalate_since:%b %d, %Y}, which usually repairs a record the portal cannot "
                    "resync on its own."
                )
            )
            blocks.append(
                ActionsBlock(
                    block_id=f"escalate:{job.invoice}",
                    elements=[
                        full_resync_button(job.invoice, since=escalate_since, root=job.root_ts)
                    ],
                )
            )
        elif job.kind is JobKind.FULL:
            blocks.append(
                context(
                    "Try again with an earlier date (`/invoice resync --since YYYY-MM-DD`), or open "
                    "the portal's Sync History for the run's error."
                )
            )
    return Message(text=text, blocks=blocks)


def replace_actions(blocks: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """The same message with its buttons replaced by a note (no stale buttons to click)."""
    kept = [b for b in blocks if b.get("type") != "actions"]
    return [*kept, {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}]


def full_resync_prompt(*, default_since: date, integration_name: str | None = None) -> Message:
    """The private prompt of `/invoice resync`: pick a date, then Start."""
    from slack_sdk.models.blocks import ButtonElement, DatePickerElement

    from commands.actions import ActionId, ButtonState

    what = f"*{escape(integration_name)}*" if integration_name else "the integration"
    text = (
        f"Full resync of {what}: the portal re-reads every record changed since the date "
        "below. One day back is usually enough; pick an earlier date if you know when the "
        "invoice was last changed."
    )
    picker = ActionsBlock(
        block_id="full_resync_prompt",
        elements=[
            DatePickerElement(
                action_id=ActionId.PICK_SYNC_DATE.value,
                initial_date=default_since.isoformat(),
                placeholder="Sync from",
            ),
            ButtonElement(
                text="Start full resync",
                action_id=ActionId.START_FULL_RESYNC.value,
                value=ButtonState(since=default_since).dump(),
                style="primary",
            ),
        ],
    )
    return Message(text="Full integration resync", blocks=[section(text), picker])


def history_message(runs: list[SyncRun], *, integration_name: str) -> Message:
    if not runs:
        text = f"No sync runs yet for *{escape(integration_name)}*."
        return Message(text=text, blocks=[section(text)])
    lines = [f"*Recent sync runs of {escape(integration_name)}*"]
    for run in runs:
        took = ""
        if run.started_at and run.finished_at:
            took = f", took {fmt_duration(run.finished_at - run.started_at)}"
        error = f": {escape(run.error)}" if run.error else ""
        lines.append(
            f"• `{escape(run.id)}` {_STATUS_ICON.get(run.status.value, '')} *{run.status.value}*{error}; "
            f"from {run.sync_from:%b %d}; created {fmt_moment(run.created_at)}{took}; "
            f"{run.records_processed} records"
        )
    return Message(text=lines[0], blocks=[section("\n".join(lines))])
