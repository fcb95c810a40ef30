"""The ``actions[]`` entry and ``state.values`` of a block_actions payload, shaped as Slack
sends them for each kind of element."""

from __future__ import annotations

import re
import time
from datetime import date
from typing import Any

from sandbox.slack.blocks import Element, block_elements, initial_state
from sandbox.slack.state import Message, SlackState

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ClickError(Exception):
    """A click that cannot happen: no such number, the button is gone, a date is missing."""


def _valid_date(value: str | None) -> bool:
    try:
        return value is not None and len(value) == 10 and bool(date.fromisoformat(value))
    except ValueError:
        return False


def action_for(
    entry: Element, value: str | None, number: int, picked: dict[str, Any] | None
) -> dict[str, Any]:
    """The action Slack reports when element ``number`` is used (``value``: the date or
    time typed for a picker; ``picked``: the element's current state, for checkboxes)."""
    element = entry.element
    action: dict[str, Any] = {
        "type": entry.kind,
        "action_id": entry.action_id,
        "block_id": entry.block_id,
    }
    if entry.kind == "button":
        action["text"] = element.get("text")
        for name in ("value", "style", "url"):
            if name in element:
                action[name] = element[name]
    elif entry.kind == "datepicker":
        if not _valid_date(value):
            raise ClickError(f"[{number}] is a date picker: click {number} YYYY-MM-DD")
        action["selected_date"] = value
        if element.get("initial_date"):
            action["initial_date"] = element["initial_date"]
    elif entry.kind == "timepicker":
        if value is None or not _TIME.match(value):
            raise ClickError(f"[{number}] is a time picker: click {number} HH:MM")
        action["selected_time"] = value
    elif entry.kind == "checkboxes":
        chosen = list((picked or {}).get("selected_options") or [])
        values = [o.get("value") for o in chosen]
        if entry.option in values:
            chosen.pop(values.index(entry.option))
        else:
            chosen.append(entry.selected)
        action["selected_options"] = chosen
    elif entry.kind == "datetimepicker":
        raise ClickError(f"[{number}]: the console cannot set date-time pickers.")
    else:
        action["selected_option"] = entry.selected
        if "placeholder" in element:
            action["placeholder"] = element["placeholder"]
    action["action_ts"] = f"{time.time():.6f}"
    return action


def state_values(state: SlackState, message: Message) -> dict[str, dict[str, Any]]:
    """``state.values`` of a message: every stateful element's current (or initial) value,
    by block_id then action_id."""
    values: dict[str, dict[str, Any]] = {}
    for block in message.blocks:
        block_id = str(block.get("block_id", ""))
        for element, _ in block_elements(block):
            initial = initial_state(element)
            if initial is None:
                continue
            action_id = str(element.get("action_id", ""))
            chosen = state.selections.get((message.ts, block_id, action_id), initial)
            values.setdefault(block_id, {})[action_id] = chosen
    return values
