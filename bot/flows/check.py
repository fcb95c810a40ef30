"""`/invoice check <number>`: compare both sides, explain a discrepancy, and post the root of
the invoice's thread. "Resync anyway": the resync a diagnosis held back, once confirmed."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.bootstrap import Container
from bot.context import Caller
from bot.flows.resync import resync_invoice_button, start_full_resync
from commands.actions import ButtonState
from commands.blocks import check_message, error_message
from services.comparison import Comparison, Verdict
from services.errors import UpstreamError
from services.followups import FollowUp, check_followed
from services.reconcile import choose_sync_date

log = logging.getLogger(__name__)


async def check(deps: Container, number: str, *, purpose: str = "command") -> Comparison:
    """Both sides of one invoice compared and, when they differ, explained."""
    return (await check_with_followups(deps, number, purpose=purpose))[0]


async def check_with_followups(
    deps: Container, number: str, *, purpose: str = "command"
) -> tuple[Comparison, list[FollowUp]]:
    """``check``, and the invoice's money still to account for (settled ones closed);
    timed in ``invoicebot_check_duration_seconds`` by ``purpose``."""
    with deps.metrics.check_seconds.labels(purpose).time():
        return await check_followed(
            number,
            accounting=deps.accounting,
            portal=deps.portal,
            store=deps.followups,
            clock=deps.clock,
            tolerance=deps.settings.money_tolerance,
        )


async def check_or_none(deps: Container, number: str, *, purpose: str) -> Comparison | None:
    """``check``, or None when a system did not answer (logged): for a message that goes
    out with or without the invoice's check."""
    try:
        return await check(deps, number, purpose=purpose)
    except UpstreamError as exc:
        log.warning("%s: could not check invoice %s: %s", purpose, number, exc)
        return None


async def run_check(deps: Container, caller: Caller, number: str) -> Comparison:
    comparison, followups = await check_with_followups(deps, number)
    diagnosis = comparison.diagnosis
    await deps.audit.record(
        actor=caller.user_id,
        action="check",
        target=number,
        outcome=comparison.verdict.value,
        detail=diagnosis.cause.value if diagnosis else "",
    )
    if comparison.verdict is Verdict.NOT_FOUND:
        message = error_message(
            f"Invoice {number} is in neither QuickBooks Online nor the portal. "
            "Check the number and try again."
        )
        await caller.tell(**message.as_kwargs())
        return comparison
    now = deps.clock()
    last_modified = comparison.accounting.last_updated if comparison.accounting else None
    message = check_message(
        comparison,
        now=now,
        full_resync_since=choose_sync_date(now=now, last_modified=last_modified),
        requested_by=caller.user_id,
        followups=followups,
    )
    try:
        await deps.slack.chat_postMessage(channel=caller.channel_id, **message.as_kwargs())
    except SlackApiError as exc:
        if exc.response.get("error") not in ("not_in_channel", "channel_not_found"):
            raise
        # A private channel or DM the bot is not in: answer the caller privately instead.
        await caller.tell(**message.as_kwargs())
    return comparison


async def resync_anyway(
    deps: Container, caller: Caller, state: ButtonState, message: dict[str, Any]
) -> None:
    """The person confirmed a resync that takes money out of view: say so in the audit log,
    then run it (a full integration resync when the portal's link is broken)."""
    assert state.invoice is not None
    await deps.audit.record(
        actor=caller.user_id,
        action="resync_anyway",
        target=state.invoice,
        outcome="confirmed",
        detail=f"full from {state.since}" if state.since else "record",
    )
    if state.since is None:
        await resync_invoice_button(
            deps,
            caller,
            number=state.invoice,
            message=message,
            root=state.root,
            ack=state.ack,
            origin=state.origin_message,
        )
        return
    message_ts = str(message.get("ts") or "") or None
    # Pressed in a private message (the guard's question): the thread is the invoice's.
    thread_ts = str(message.get("thread_ts") or message_ts or "") or state.root
    await start_full_resync(
        deps,
        caller,
        since=state.since,
        invoice=state.invoice,
        thread_ts=thread_ts,
        root_ts=state.root or (thread_ts if thread_ts == message_ts else None),
        clicked=message,
        ack=state.ack,
        origin=state.origin_message,
    )
