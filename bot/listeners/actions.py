"""The work behind the buttons (each reads the button's state again: the listener,
bot/listeners/work.py, checked it before handing it off), and the pickers' listener."""

from __future__ import annotations

from datetime import date
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck

from bot.bootstrap import Container
from bot.context import Caller
from bot.flows.check import resync_anyway, run_check
from bot.flows.followups import ask_accounted, confirm_accounted
from bot.flows.resync import resync_invoice_button, start_full_resync
from commands.actions import ActionId, ButtonState, Origin
from commands.followup_blocks import reason_of
from commands.parse import parse_date
from services.errors import UsageError
from services.reconcile import choose_sync_date

NOT_VALID = "That button is not valid any more."


async def acknowledge(ack: AsyncAck) -> None:
    """A date picker or a text input: read from the message's state when its button is
    pressed; nothing to do now."""
    await ack()


def action_of(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions") or [{}]
    first = actions[0]
    return first if isinstance(first, dict) else {}


def button_state(body: dict[str, Any], *, invoice: bool = False) -> ButtonState:
    """The clicked button's validated state; UsageError (told privately) when it is forged,
    stale or, with ``invoice``, names no invoice."""
    state = ButtonState.load(action_of(body).get("value"))
    if invoice and state.invoice is None:
        raise UsageError(NOT_VALID)
    return state


def invoice_of(state: ButtonState) -> str:
    if state.invoice is None:
        raise UsageError(NOT_VALID)
    return state.invoice


async def resync_invoice(container: Container, caller: Caller, body: dict[str, Any]) -> None:
    state = button_state(body, invoice=True)
    await resync_invoice_button(
        container,
        caller,
        number=invoice_of(state),
        message=body.get("message") or {},
        root=state.root,
    )


async def resync_anyway_work(container: Container, caller: Caller, body: dict[str, Any]) -> None:
    """The "Resync anyway" button: a resync a diagnosis held back, once confirmed."""
    state = button_state(body, invoice=True)
    await resync_anyway(container, caller, state, body.get("message") or {})


async def resync_full(container: Container, caller: Caller, body: dict[str, Any]) -> None:
    state = button_state(body)
    message = body.get("message") or {}
    message_ts = str(message.get("ts") or "") or None
    thread_ts = str(message.get("thread_ts") or message_ts or "") or None
    root = state.root or (thread_ts if thread_ts == message_ts else None)
    since = state.since or choose_sync_date(now=container.clock())
    await start_full_resync(
        container,
        caller,
        since=since,
        invoice=state.invoice,
        thread_ts=thread_ts,
        root_ts=root if state.invoice else None,
        clicked=message,
        ack=state.ack,
    )


def prompted_since(body: dict[str, Any]) -> date:
    """The date Start on the full resync prompt goes from: picked on it, or the prompt's."""
    since = picked_date(body) or button_state(body).since
    if since is None:
        raise UsageError("Pick a date first.")
    return since


async def start_prompted(container: Container, caller: Caller, body: dict[str, Any]) -> None:
    """Start on the full resync prompt, with the date picked on it."""
    state = button_state(body)
    since = prompted_since(body)
    await start_from_prompt(container, caller, since, state.ack, state.origin_message)


async def check_again(container: Container, caller: Caller, body: dict[str, Any]) -> None:
    """ "Check again": a fresh check of the invoice (where a re-check could not be read)."""
    await run_check(container, caller, invoice_of(button_state(body, invoice=True)))


def followup_of(body: dict[str, Any]) -> int:
    """The follow-up a button names (UsageError when it names none)."""
    state = button_state(body, invoice=True)
    if state.followup is None:
        raise UsageError(NOT_VALID)
    return state.followup


async def mark_accounted(container: Container, caller: Caller, body: dict[str, Any]) -> None:
    """ "Mark accounted for" beside an unexplained difference: the question, privately."""
    await ask_accounted(container, caller, followup_of(body))


async def confirm_accounted_work(
    container: Container, caller: Caller, body: dict[str, Any]
) -> None:
    """The question's button: closes that follow-up with the reason typed above it."""
    followup = followup_of(body)
    reason = reason_of((body.get("state") or {}).get("values"))
    await confirm_accounted(container, caller, followup, reason)


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
