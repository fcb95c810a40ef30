"""`/invoice check <number>`: compare both sides and post the root of the invoice's thread."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

from bot.bootstrap import Container
from bot.context import Caller
from commands.blocks import check_message, error_message
from services.check import check_invoice
from services.models import Comparison, Verdict
from services.reconcile import choose_sync_date


async def run_check(deps: Container, caller: Caller, number: str) -> Comparison:
    comparison = await check_invoice(number, accounting=deps.accounting, portal=deps.portal)
    await deps.audit.record(
        actor=caller.user_id, action="check", target=number, outcome=comparison.verdict.value
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
    )
    try:
        await deps.slack.chat_postMessage(channel=caller.channel_id, **message.as_kwargs())
    except SlackApiError as exc:
        if exc.response.get("error") not in ("not_in_channel", "channel_not_found"):
            raise
        # A private channel or DM the bot is not in: answer the caller privately instead.
        await caller.tell(**message.as_kwargs())
    return comparison
