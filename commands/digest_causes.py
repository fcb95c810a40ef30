"""The digest's worst discrepancies grouped by cause, money at risk first. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from slack_sdk.models.blocks import Block

from commands.blocks import Message, context, resync_buttons, section
from commands.cause_blocks import CAUSE_TITLES, cause_line
from commands.digest_blocks import discrepancy_line
from commands.format import fmt_money
from services.causes import Cause
from services.comparison import Comparison
from services.digest import Discrepancy
from services.reconcile import choose_sync_date

Explained = tuple[Discrepancy, Comparison]
"""A digest discrepancy and its fresh, diagnosed comparison."""


def _risk(item: Explained) -> Decimal:
    diagnosis = item[1].diagnosis
    return diagnosis.money_at_risk if diagnosis is not None else Decimal(0)


def _cause(item: Explained) -> Cause:
    diagnosis = item[1].diagnosis
    return diagnosis.cause if diagnosis is not None else Cause.UNKNOWN


def grouped(items: Sequence[Explained]) -> list[tuple[Cause, list[Explained]]]:
    """Groups by cause: money at risk first (then the amount apart), worst first inside."""
    groups: dict[Cause, list[Explained]] = {}
    for item in items:
        groups.setdefault(_cause(item), []).append(item)
    for members in groups.values():
        members.sort(key=lambda i: (_risk(i), i[0].amount), reverse=True)
    return sorted(
        groups.items(),
        key=lambda g: (sum(map(_risk, g[1])), sum(i[0].amount for i in g[1])),
        reverse=True,
    )


def group_header(cause: Cause, members: list[Explained]) -> Message:
    at_risk = sum(map(_risk, members), Decimal(0))
    apart = sum((i[0].amount for i in members), Decimal(0))
    title = f"*{CAUSE_TITLES[cause]}*: {len(members)} invoice{'s' if len(members) != 1 else ''}"
    title += f", {fmt_money(apart)} apart"
    if at_risk:
        title += f", *{fmt_money(at_risk)} of client money at risk*"
    return Message(title.replace("*", ""), [section(title)])


def explained_message(item: Explained, *, now: datetime) -> Message:
    """One discrepancy: its numbers, its cause, and only the buttons that help."""
    found, comparison = item
    cause = comparison.diagnosis.cause if comparison.diagnosis is not None else None
    line = discrepancy_line(found, now=now, cause=cause)
    blocks: list[Block] = [section(line)]
    if comparison.diagnosis is not None:
        blocks.append(context(cause_line(comparison.diagnosis)))
    modified = comparison.accounting.last_updated if comparison.accounting else None
    actions = resync_buttons(
        comparison,
        full_resync_since=choose_sync_date(now=now, last_modified=modified),
        diagnosis=comparison.diagnosis,
    )
    if actions is not None:
        blocks.append(actions)
    return Message(line.replace("*", ""), blocks)


def explained_messages(items: Sequence[Explained], *, now: datetime) -> list[Message]:
    messages: list[Message] = []
    for cause, members in grouped(items):
        messages.append(group_header(cause, members))
        messages.extend(explained_message(item, now=now) for item in members)
    return messages
