"""Marking an unexplained difference accounted for, by hand: the button beside the money,
the private question with the required reason, the answer, and the history's lines. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
)

from commands.actions import ActionId, ButtonState
from commands.blocks import Message, section
from commands.format import escape, fmt_moment, fmt_money
from services.followups import MAX_REASON, FollowUp

REASON_BLOCK = "accounted_reason"


def accounted_question(followup: FollowUp) -> Message:
    """Privately: why is it accounted for? The reason is required; nothing closes without it."""
    money = f"{escape(followup.reference)} ({fmt_money(followup.amount)})"
    text = (
        f"Mark {money} on invoice {followup.invoice} accounted for? Nothing on record explains "
        "this difference, so no evidence will ever close it: say how it is accounted for. "
        "Your name, the time and the reason are kept and shown in `/invoice history`."
    )
    state = ButtonState(invoice=followup.invoice, followup=followup.id).dump()
    button = ButtonElement(
        text="Mark accounted for",
        action_id=ActionId.CONFIRM_ACCOUNTED.value,
        value=state,
        style="primary",
        confirm=ConfirmObject(
            title="Mark accounted for?",
            text=f"Closes this follow-up only ({followup.reference}, invoice "
            f"{followup.invoice}), with your reason.",
            confirm="Mark accounted for",
            deny="Cancel",
        ),
    )
    reason = InputBlock(
        block_id=REASON_BLOCK,
        label=PlainTextObject(text="How is it accounted for?"),
        element=PlainTextInputElement(
            action_id=ActionId.ACCOUNTED_REASON.value,
            max_length=MAX_REASON,
            placeholder="e.g. refunded by card on Dec 3, see ticket 4411",
        ),
    )
    return Message(text=f"Mark {followup.reference} accounted for?", blocks=[
        section(text), reason, ActionsBlock(elements=[button])
    ])  # fmt: skip


def accounted_done(followup: FollowUp) -> Message:
    """The answer, in place of the question."""
    text = f":white_check_mark: {closed_line(followup)}"
    return Message(text=text, blocks=[section(text)])


def closed_line(followup: FollowUp) -> str:
    """`CB-… ($15.00) on invoice 11269: marked accounted for by @alice on …: refunded…`."""
    when = fmt_moment(followup.closed_at) if followup.closed_at else "just now"
    why = escape((followup.closed_because or "").removeprefix("marked accounted for: "))
    return (
        f"*{escape(followup.reference)}* ({fmt_money(followup.amount)}) on invoice "
        f"{followup.invoice}: marked accounted for by <@{followup.closed_by}> ({when}): {why}"
    )


def closed_by_hand_text(followups: Sequence[FollowUp]) -> str:
    return "*Marked accounted for by hand*\n" + "\n".join(f"• {closed_line(f)}" for f in followups)


def reason_of(values: object) -> str:
    """The reason typed into the question's input, from a click's ``state.values``."""
    if not isinstance(values, dict):
        return ""
    block = values.get(REASON_BLOCK)
    entry = block.get(ActionId.ACCOUNTED_REASON.value) if isinstance(block, dict) else None
    value = entry.get("value") if isinstance(entry, dict) else None
    return value if isinstance(value, str) else ""
