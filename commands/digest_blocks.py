"""The digest in Slack: a summary in the channel, the discrepancies in its thread. Pure.

Each of the worst ``BUTTONED`` discrepancies is its own thread message with its buttons (a
click replaces the buttons of the message clicked, so one message per invoice keeps the
others' buttons); the next ones are listed as text; past that, the CSV file has them all.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from pydantic import ValidationError
from slack_sdk.models.blocks import ActionsBlock, Block, SectionBlock

from commands.blocks import (
    MAX_BLOCKS,
    MAX_SECTION,
    Message,
    check_again_button,
    context,
    full_resync_button,
    header,
    mrkdwn,
    resync_invoice_button,
    section,
)
from commands.cause_blocks import CAUSE_TITLES
from commands.fix_blocks import owed_fix_blocks
from commands.followup_text import accounted_buttons, followups_text
from commands.format import escape, fmt_ago, fmt_money
from services.causes import Cause
from services.digest import DigestResult, Discrepancy, Kind
from services.followups import FollowUp
from services.reconcile import choose_sync_date

BUTTONED = 30
"""The worst this many get a message with buttons each."""
LISTED = 100
"""At most the next this many are listed as text in one message; the CSV has every one."""
LISTED_CHARS = 9_000


def fmt_seconds(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s"


def fmt_amounts(result: DigestResult) -> str:
    amounts = result.amounts_at_stake or {"USD": result.amount_at_stake}
    return " + ".join(fmt_money(amount, code) for code, amount in amounts.items())


def _footer(result: DigestResult, requested_by: str | None) -> str:
    minutes = int(result.recent_window.total_seconds() // 60)
    who = f"Requested by <@{requested_by}>" if requested_by else "Scheduled digest"
    rounding = ""
    if result.within_tolerance:
        limit = fmt_money(result.tolerance)
        rounding = f"{result.within_tolerance:,} within the rounding tolerance ({limit}) · "
    scan = "scan took"
    if result.incremental:  # open_invoices is then the last full count
        scan = f"read the {result.reread:,} invoices changed since the last digest in"
    return (
        f"{result.skipped_recent:,} skipped as changed in the last {minutes} minutes "
        f"(possibly mid-sync) · {rounding}{scan} {fmt_seconds(result.duration)} · {who}"
    )


def summary_message(
    result: DigestResult,
    *,
    day: date,
    requested_by: str | None,
    causes: Mapping[str, Cause] | None = None,
    rechecks_failed: int = 0,
    followups: Sequence[FollowUp] = (),
) -> Message:
    """The channel message: money still to account for first, then the counts by cause
    (the thread's own taxonomy), the amount at stake, what was skipped or not re-checked,
    how long it took. "All clear" only when nothing was skipped or left unverified."""
    title = f"Discrepancy digest · {day:%a %b %d, %Y}"
    found = len(result.discrepancies)
    blocks: list[Block] = [header(title)]
    if followups:
        total = sum((f.amount for f in followups), Decimal(0))
        invoices = len({f.invoice for f in followups})
        blocks.append(
            section(
                f":warning: *Money still to account for: {fmt_money(total)}* on {invoices} "
                f"invoice{'s' if invoices != 1 else ''}, taken out of view by a resync "
                "(first in the thread)."
            )
        )
    if not found:
        if result.skipped_recent:
            line = (
                f":large_green_circle: None differ among {result.compared:,} compared; "
                f"{result.skipped_recent:,} skipped as changed in the last "
                f"{int(result.recent_window.total_seconds() // 60)} minutes."
            )
        else:
            line = (
                f":white_check_mark: *All clear*: {result.open_invoices:,} open invoices "
                "compared between QuickBooks Online and the portal; none differ."
            )
        blocks += [section(line), context(_footer(result, requested_by))]
        return Message(f"{title}: {line.replace('*', '')}", blocks)
    amounts = fmt_amounts(result)
    line = (
        f":red_circle: *{found:,} of {result.open_invoices:,} open invoices differ* "
        f"between QuickBooks Online and the portal: *{amounts} at stake*."
    )
    counts = Counter((causes or {}).values())
    fields = [
        mrkdwn(f"*{CAUSE_TITLES[cause]}*\n{count:,}") for cause, count in counts.most_common()
    ]
    unchecked = found - sum(counts.values())
    if unchecked:
        fields.append(mrkdwn(f"*Cause not re-checked*\n{unchecked:,}"))
    blocks.append(section(line))
    if fields:
        blocks.append(SectionBlock(fields=fields[:10]))
    if rechecks_failed:
        blocks.append(
            section(
                f":warning: {rechecks_failed:,} could not be re-checked (a system did not "
                "answer): they are listed with *Check again* only, no resync."
            )
        )
    blocks.append(section("The discrepancies are in the thread: money at risk first, then amount."))
    blocks.append(context(_footer(result, requested_by)))
    text = f"{title}: {found:,} of {result.open_invoices:,} open invoices differ, {amounts}."
    return Message(text, blocks)


def followups_message(followups: Sequence[FollowUp]) -> Message:
    """First in the thread: the money a resync took out of view, still to account for."""
    blocks: list[Block] = [section(followups_text(followups))]
    if (accounted := accounted_buttons(followups)) is not None:
        blocks.append(accounted)
    blocks.extend(owed_fix_blocks(followups, named=True))
    return Message("Money still to account for", blocks)


def failed_message(reason: str, *, day: date, requested_by: str | None) -> Message:
    """The scan could not finish: say so, and report nothing as checked."""
    title = f"Discrepancy digest · {day:%a %b %d, %Y}"
    who = f" (requested by <@{requested_by}>)" if requested_by else ""
    line = (
        f":warning: *The digest could not finish*{who}: {reason}\n"
        "Nothing is reported as checked. Try `/invoice digest` again in a few minutes."
    )
    return Message(f"{title}: the digest could not finish.", [header(title), section(line)])


def discrepancy_line(d: Discrepancy, *, now: datetime, cause: Cause | None = None) -> str:

    def money(amount: Decimal) -> str:
        return fmt_money(amount, d.currency)

    name = f"*{escape(d.number)}* · {escape(d.customer)}" if d.customer else f"*{escape(d.number)}*"
    match d.kind:
        case Kind.STALE_BALANCE:
            assert d.accounting_balance is not None and d.portal_balance is not None
            what = (
                f":red_circle: out by *{money(d.amount)}*: QuickBooks "
                f"{money(d.accounting_balance)}, portal {money(d.portal_balance)}"
            )
        case Kind.PAID_IN_ACCOUNTING:
            assert d.portal_balance is not None
            state = "void" if cause is Cause.INVOICE_VOIDED else "paid"
            what = (
                f":red_circle: *{state} in QuickBooks*, still open in the portal at "
                f"{money(d.portal_balance)}"
            )
        case Kind.MISSING_IN_PORTAL:
            assert d.accounting_balance is not None
            what = f":warning: *missing in the portal*: {money(d.accounting_balance)} open in QuickBooks"
        case Kind.MISSING_IN_ACCOUNTING:
            assert d.portal_balance is not None
            what = (
                f":warning: *missing in QuickBooks*: {money(d.portal_balance)} open in the "
                "portal (deleted or voided in QuickBooks? a resync cannot fix this)"
            )
    if d.accounting_changed is not None:
        what += f" · changed in QuickBooks {fmt_ago(now - d.accounting_changed)}"
    return f"{name}: {what}"


RECHECK_FAILED = (
    ":warning: Could not re-check its cause just now (a system did not answer): no resync "
    "offered until a check reads the evidence."
)
IN_PROGRESS = ":arrows_counterclockwise: A resync that is running re-reads it: resync in progress."
NOW_IN_SYNC = ":white_check_mark: In sync when checked again just now."


def discrepancy_message(d: Discrepancy, *, now: datetime, note: str | None = None) -> Message:
    """One discrepancy with its numbers and, when a resync can fix it, its buttons. With a
    ``note`` (re-check failed, resync in progress, in sync now): the note, and only
    **Check again** where a re-check failed."""
    line = discrepancy_line(d, now=now)
    blocks: list[Block] = [section(line)]
    if note is not None:
        blocks.append(context(note))
        if note == RECHECK_FAILED:
            try:
                button = check_again_button(d.number)
            except ValidationError:
                return Message(line.replace("*", ""), blocks)
            blocks.append(ActionsBlock(block_id=f"digest:{d.number}", elements=[button]))
        return Message(line.replace("*", ""), blocks)
    if d.resync_can_fix:
        since = choose_sync_date(now=now, last_modified=d.accounting_changed)
        try:
            buttons = [resync_invoice_button(d.number), full_resync_button(d.number, since=since)]
        except ValidationError:  # a number a button cannot carry: say where to fix it
            blocks.append(context("Resync this invoice from the portal's Entities tab."))
        else:
            blocks.append(ActionsBlock(block_id=f"digest:{d.number}", elements=buttons))
    return Message(line.replace("*", ""), blocks)


def listed_message(rest: list[Discrepancy], *, now: datetime, total: int) -> Message:
    """The discrepancies after the buttoned ones, as text, as many as one message holds
    (Slack refuses messages much above 13,000 characters)."""
    lines: list[str] = []
    size = 0
    for d in rest:
        line = discrepancy_line(d, now=now)[: MAX_SECTION - 10]
        if size + len(line) > LISTED_CHARS:
            break
        lines.append(line)
        size += len(line) + 1
    title = f"Next {len(lines):,} of {total:,} (no buttons: use `/invoice check NUMBER`)"
    blocks: list[Block] = [section(f"*{title}*")]
    blocks.extend(section(chunk) for chunk in _chunks(lines, MAX_SECTION - 10))
    return Message(title, blocks[:MAX_BLOCKS])


def thread_messages(
    result: DigestResult, *, now: datetime, top: list[Message] | None = None
) -> list[Message]:
    """What goes in the summary's thread, worst first; capped (the CSV has the rest).
    ``top``: the messages for the worst BUTTONED (grouped by cause), when explained."""
    found = list(result.discrepancies)
    if top is None:
        top = [discrepancy_message(d, now=now) for d in found[:BUTTONED]]
    messages = list(top)
    rest = found[BUTTONED : BUTTONED + LISTED]
    if rest:
        messages.append(listed_message(rest, now=now, total=len(found)))
    if len(found) > BUTTONED:
        note = f"The full list of {len(found):,} discrepancies is in the CSV file below."
        messages.append(Message(note, [context(note)]))
    return messages


def needs_csv(result: DigestResult) -> bool:
    return len(result.discrepancies) > BUTTONED


def _chunks(lines: Iterable[str], limit: int) -> Iterable[str]:
    chunk = ""
    for line in lines:
        if chunk and len(chunk) + 1 + len(line) > limit:
            yield chunk
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        yield chunk


CSV_HEADER = (
    "number",
    "customer",
    "kind",
    "quickbooks_balance",
    "portal_balance",
    "difference",
    "amount_at_stake",
    "currency",
    "changed_in_quickbooks",
    "portal_last_synced",
    "cause",
)
"""``cause``: the diagnosis of the worst discrepancies (re-checked for the thread); empty for
the others, which the digest compares by balance only."""


def safe_cell(value: str) -> str:
    """Text a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def discrepancies_csv(
    found: Iterable[Discrepancy], *, causes: Mapping[str, Cause] | None = None
) -> str:
    causes = causes or {}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for d in found:
        writer.writerow(
            [
                safe_cell(d.number),
                safe_cell(d.customer),
                d.kind.value,
                _text(d.accounting_balance),
                _text(d.portal_balance),
                _text(d.difference),
                str(d.amount),
                safe_cell(d.currency or ""),
                d.accounting_changed.isoformat() if d.accounting_changed else "",
                d.portal_synced.isoformat() if d.portal_synced else "",
                causes[d.number].value if d.number in causes else "",
            ]
        )
    return out.getvalue()


def _text(value: object | None) -> str:
    return "" if value is None else str(value)
