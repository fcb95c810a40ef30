"""Button and picker listeners: ack, read the button's state, hand the work to the runner."""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import date
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.bootstrap import Container
from bot.context import REPLY, Caller, deps
from bot.errors import reply_for
from bot.flows.check import resync_anyway, run_check
from bot.flows.followups import ask_accounted, confirm_accounted
from bot.flows.resync import resync_invoice_button, start_full_resync
from bot.waits import telling_waits
from commands.actions import ActionId, ButtonState, Origin
from commands.followup_blocks import reason_of
from commands.parse import parse_date
from services.errors import UsageError
from services.reconcile import choose_sync_date

NOT_VALID = "That button is not valid any more."


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


def _button_state(body: dict[str, Any], *, invoice: bool) -> ButtonState | UsageError:
    """The clicked button's validated state, or why it is not valid (forged, stale or, with
    ``invoice``, naming no invoice). Pure: read before the ack goes out."""
    try:
        state = ButtonState.load(_action(body).get("value"))
    except UsageError as exc:
        return exc
    if invoice and state.invoice is None:
        return UsageError(NOT_VALID)
    return state


def _run(container: Container, caller: Caller, work: Coroutine[Any, Any, None], name: str) -> None:
    """Hand ``work`` to the runner; its errors reach the person privately."""

    async def on_error(exc: BaseException) -> None:
        await caller.tell(**reply_for(exc, container.metrics).as_kwargs())

    with telling_waits(container, caller):
        container.tasks.spawn(work, name=name, on_error=on_error)


def _refuse(container: Container, caller: Caller, exc: UsageError) -> None:
    """Tell the person privately (after the ack) why the click did nothing."""
    reply = reply_for(exc, container.metrics)
    container.tasks.spawn(caller.tell(**reply.as_kwargs()), name=REPLY)


def _invoice_state(
    container: Container, caller: Caller, body: dict[str, Any]
) -> ButtonState | None:
    """The clicked button's state naming an invoice, or None (the person told why)."""
    state = _button_state(body, invoice=True)
    if isinstance(state, UsageError):
        _refuse(container, caller, state)
        return None
    return state


async def on_resync_invoice(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    await ack()
    container, caller = deps(context), _caller(body, respond)
    state = _invoice_state(container, caller, body)
    if state is None or state.invoice is None:
        return
    message = body.get("message") or {}
    work = resync_invoice_button(
        container, caller, number=state.invoice, message=message, root=state.root
    )
    _run(container, caller, work, f"click:{ActionId.RESYNC_INVOICE}")


async def on_resync_anyway(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    """The "Resync anyway" button: a resync a diagnosis held back, once confirmed."""
    await ack()
    container, caller = deps(context), _caller(body, respond)
    state = _invoice_state(container, caller, body)
    if state is None or state.invoice is None:
        return
    work = resync_anyway(container, caller, state, body.get("message") or {})
    _run(container, caller, work, f"click:{ActionId.RESYNC_ANYWAY}")


async def on_resync_full(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    await ack()
    container, caller = deps(context), _caller(body, respond)
    state = _button_state(body, invoice=False)
    if isinstance(state, UsageError):
        _refuse(container, caller, state)
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
    _run(container, caller, work, f"click:{ActionId.RESYNC_FULL}")


async def on_pick_sync_date(ack: AsyncAck) -> None:
    """The date is read from the prompt's state when Start is pressed."""
    await ack()


async def on_start_full_resync(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    await ack()
    container, caller = deps(context), _caller(body, respond)
    try:
        state = ButtonState.load(_action(body).get("value"))
        since = picked_date(body) or state.since
        if since is None:
            raise UsageError("Pick a date first.")
    except UsageError as exc:
        _refuse(container, caller, exc)
        return
    _run(
        container,
        caller,
        start_from_prompt(container, caller, since, state.ack, state.origin_message),
        f"click:{ActionId.START_FULL_RESYNC}",
    )


async def start_from_prompt(
    container: Container,
    caller: Caller,
    since: date,
    ack: str | None,
    origin: Origin | None = None,
) -> None:
    """The prompt says the resync is asked for; the guard's question, if any, follows
    privately, and the thread in the channel."""
    await caller.respond(
        replace_original=True,
        text=f"Full resync from {since:%b %d, %Y} asked for: progress in the channel.",
    )
    await start_full_resync(
        container, caller, since=since, invoice=None, thread_ts=None, ack=ack, origin=origin
    )


async def on_check_again(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    """ "Check again": a fresh check of the invoice (where a re-check could not be read)."""
    await ack()
    container, caller = deps(context), _caller(body, respond)
    state = _invoice_state(container, caller, body)
    if state is None or state.invoice is None:
        return
    _run(
        container,
        caller,
        check_again(container, caller, state.invoice),
        f"click:{ActionId.CHECK_AGAIN}",
    )


async def check_again(container: Container, caller: Caller, number: str) -> None:
    await run_check(container, caller, number)


async def on_mark_accounted(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    """ "Mark accounted for" beside an unexplained difference: the question, privately."""
    await ack()
    container, caller = deps(context), _caller(body, respond)
    followup = _followup_of(container, caller, body)
    if followup is None:
        return
    work = ask_accounted(container, caller, followup)
    _run(container, caller, work, f"click:{ActionId.MARK_ACCOUNTED}")


async def on_confirm_accounted(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
) -> None:
    """The question's button: closes that follow-up with the reason typed above it."""
    await ack()
    container, caller = deps(context), _caller(body, respond)
    followup = _followup_of(container, caller, body)
    if followup is None:
        return
    reason = reason_of((body.get("state") or {}).get("values"))
    work = confirm_accounted(container, caller, followup, reason)
    _run(container, caller, work, f"click:{ActionId.CONFIRM_ACCOUNTED}")


def _followup_of(container: Container, caller: Caller, body: dict[str, Any]) -> int | None:
    """The follow-up a button names (refused privately when it names none)."""
    state = _invoice_state(container, caller, body)
    if state is not None and state.followup is None:
        _refuse(container, caller, UsageError(NOT_VALID))
    return None if state is None else state.followup


async def on_input(ack: AsyncAck) -> None:
    """A text input that dispatches (it is read from the state when its button is pressed)."""
    await ack()


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
