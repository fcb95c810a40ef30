"""Button and picker listeners: ack at once, validate the button's state, run the flow."""

from __future__ import annotations

from datetime import date
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.context import Caller, deps
from bot.errors import reply_for
from bot.flows.check import resync_anyway, run_check
from bot.flows.resync import resync_invoice_button, start_full_resync
from commands.actions import ActionId, ButtonState
from commands.parse import parse_date
from services.errors import UsageError
from services.reconcile import choose_sync_date


def _caller(body: dict[str, Any], respond: AsyncRespond) -> Caller:
    channel = body.get("channel") or {}
    container = body.get("container") or {}
    return Caller(
        user_id=str((body.get("user") or {}).get("id", "")),
        channel_id=str(channel.get("id") or container.get("channel_id") or ""),
        respond=respond,
    )


def _action(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions") or [{}]
    first = actions[0]
    return first if isinstance(first, dict) else {}


async def _button_state(
    body: dict[str, Any], caller: Caller, *, invoice: bool
) -> ButtonState | None:
    """The clicked button's validated state; None (the person told privately) if forged,
    stale or, with ``invoice``, naming no invoice."""
    try:
        state = ButtonState.load(_action(body).get("value"))
        if invoice and state.invoice is None:
            raise UsageError("That button is not valid any more.")
    except UsageError as exc:
        await caller.tell(**reply_for(exc).as_kwargs())
        return None
    return state


def _run(context: AsyncBoltContext, caller: Caller, work: Any, name: str) -> None:
    async def on_error(exc: BaseException) -> None:
        await caller.tell(**reply_for(exc).as_kwargs())

    deps(context).tasks.spawn(work, name=name, on_error=on_error)


async def on_resync_invoice(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    await ack()
    caller = _caller(body, respond)
    state = await _button_state(body, caller, invoice=True)
    if state is None or state.invoice is None:
        return
    message = body.get("message") or {}
    work = resync_invoice_button(
        deps(context), caller, number=state.invoice, message=message, root=state.root
    )
    _run(context, caller, work, f"click:{ActionId.RESYNC_INVOICE}")


async def on_resync_anyway(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    """The "Resync anyway" button: a resync a diagnosis held back, once confirmed."""
    await ack()
    caller = _caller(body, respond)
    state = await _button_state(body, caller, invoice=True)
    if state is None or state.invoice is None:
        return
    work = resync_anyway(deps(context), caller, state, body.get("message") or {})
    _run(context, caller, work, f"click:{ActionId.RESYNC_ANYWAY}")


async def on_resync_full(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    await ack()
    caller = _caller(body, respond)
    container = deps(context)
    state = await _button_state(body, caller, invoice=False)
    if state is None:
        return
    message = body.get("message") or {}
    message_ts = str(message.get("ts") or "") or None
    thread_ts = str(message.get("thread_ts") or message_ts or "") or None
    root = state.root or (thread_ts if thread_ts == message_ts else None)
    since = state.since or choose_sync_date(now=container.clock())
    work = start_full_resync(
        container,
        caller,
        since=since,
        invoice=state.invoice,
        thread_ts=thread_ts,
        root_ts=root if state.invoice else None,
        clicked=message,
        ack=state.ack,
    )
    _run(context, caller, work, f"click:{ActionId.RESYNC_FULL}")


async def on_pick_sync_date(ack: AsyncAck) -> None:
    """The date is read from the prompt's state when Start is pressed."""
    await ack()


async def on_start_full_resync(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    await ack()
    caller = _caller(body, respond)
    try:
        state = ButtonState.load(_action(body).get("value"))
        since = picked_date(body) or state.since
        if since is None:
            raise UsageError("Pick a date first.")
    except UsageError as exc:
        await caller.tell(**reply_for(exc).as_kwargs())
        return
    await respond(
        replace_original=True,
        text=f"Starting the full resync from {since:%b %d, %Y}: progress in the channel.",
    )
    work = start_full_resync(
        deps(context), caller, since=since, invoice=None, thread_ts=None, ack=state.ack
    )
    _run(context, caller, work, f"click:{ActionId.START_FULL_RESYNC}")


async def on_check_again(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    """ "Check again": a fresh check of the invoice (where a re-check could not be read)."""
    await ack()
    caller = _caller(body, respond)
    state = await _button_state(body, caller, invoice=True)
    if state is None or state.invoice is None:
        return
    work = run_check(deps(context), caller, state.invoice)
    _run(context, caller, work, f"click:{ActionId.CHECK_AGAIN}")


def picked_date(body: dict[str, Any]) -> date | None:
    """The date picker's value from the message state, when the person changed it."""
    values = ((body.get("state") or {}).get("values")) or {}
    if not isinstance(values, dict):
        return None
    for block in values.values():
        if not isinstance(block, dict):
            continue
        picker = block.get(ActionId.PICK_SYNC_DATE.value)
        if isinstance(picker, dict) and isinstance(picker.get("selected_date"), str):
            return parse_date(picker["selected_date"])
    return None
