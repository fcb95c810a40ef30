"""Block Kit as the emulator sees it: the ids Slack fills in, Slack's limits, and the
interactive elements a person can press."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Block = dict[str, Any]

BLOCK_TYPES = {
    "actions", "context", "context_actions", "divider", "file", "header", "image", "input",
    "markdown", "rich_text", "section", "table", "video",
}  # fmt: skip
OPTION_KINDS = {"overflow", "static_select", "radio_buttons", "checkboxes"}
"""Elements whose options each get a number."""
PICKER_KINDS = {"datepicker", "timepicker", "datetimepicker"}
STATE_KINDS = PICKER_KINDS | OPTION_KINDS - {"overflow"} | {"plain_text_input"}
"""Elements whose value Slack sends in ``state.values``."""


@dataclass(frozen=True)
class Element:
    """One thing a person can press: a button, a date picker, or one option of a menu."""

    block_id: str
    action_id: str
    kind: str
    option: str
    """The button's value or the option's value ("" for pickers): with action_id, what
    identifies the element across edits."""
    label: str
    element: dict[str, Any]
    selected: dict[str, Any] | None = None
    """The option this entry stands for (menus)."""
    dispatches: bool = True
    """False inside an input block without dispatch_action: picking only sets the state
    that the next button press sends."""

    @property
    def confirm(self) -> dict[str, Any] | None:
        confirm = self.element.get("confirm")
        return confirm if isinstance(confirm, dict) else None


def text_of(obj: Any) -> str:
    """The text of a text object ({"type": "plain_text", "text": ...}) or a plain string."""
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)


def block_elements(block: Block) -> Iterator[tuple[dict[str, Any], bool]]:
    """The element objects of a block that can carry an action: (element, dispatches)."""
    kind = block.get("type")
    if kind == "actions":
        for element in block.get("elements") or []:
            if isinstance(element, dict):
                yield element, True
    elif kind == "section" and isinstance(block.get("accessory"), dict):
        yield block["accessory"], True
    elif kind == "input" and isinstance(block.get("element"), dict):
        yield block["element"], bool(block.get("dispatch_action"))


def interactive_elements(blocks: list[Block]) -> list[Element]:
    """Every pressable element in the blocks, in reading order."""
    out: list[Element] = []
    for block in blocks:
        block_id = str(block.get("block_id", ""))
        for element, dispatches in block_elements(block):
            kind = str(element.get("type", ""))
            action_id = str(element.get("action_id", ""))
            if kind == "button":
                label = text_of(element.get("text"))
                value = str(element.get("value", ""))
                out.append(
                    Element(block_id, action_id, kind, value, label, element, None, dispatches)
                )
            elif kind in PICKER_KINDS:
                label = text_of(element.get("placeholder")) or "Pick a date"
                out.append(Element(block_id, action_id, kind, "", label, element, None, dispatches))
            elif kind in OPTION_KINDS:
                for option in element.get("options") or []:
                    value = str(option.get("value", ""))
                    label = text_of(option.get("text"))
                    out.append(
                        Element(
                            block_id, action_id, kind, value, label, element, option, dispatches
                        )
                    )
    return out


def initial_state(element: dict[str, Any]) -> dict[str, Any] | None:
    """The ``state.values`` entry of an element nobody has touched, or None if it has none."""
    kind = str(element.get("type", ""))
    if kind not in STATE_KINDS:
        return None
    if kind == "datepicker":
        return {"type": kind, "selected_date": element.get("initial_date")}
    if kind == "timepicker":
        return {"type": kind, "selected_time": element.get("initial_time")}
    if kind == "datetimepicker":
        return {"type": kind, "selected_date_time": element.get("initial_date_time")}
    if kind == "checkboxes":
        return {"type": kind, "selected_options": element.get("initial_options") or []}
    if kind == "plain_text_input":
        return {"type": kind, "value": element.get("initial_value")}
    return {"type": kind, "selected_option": element.get("initial_option")}


def _short_id(*parts: Any) -> str:
    digest = hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return base64.b32encode(digest).decode()[:5]


def normalize_blocks(blocks: list[Block]) -> list[Block]:
    """A copy with the ids Slack fills in when the app leaves them out (block_id on every
    block, action_id on every element). Slack's are random; these are derived from the
    content, so they are stable but never what a listener would match on."""
    out = copy.deepcopy(blocks)
    for index, block in enumerate(out):
        block.setdefault("block_id", _short_id(index, block))
        for position, element in enumerate(_raw_elements(block)):
            element.setdefault("action_id", _short_id(block["block_id"], position, element))
    return out


def _raw_elements(block: Block) -> list[dict[str, Any]]:
    kind = block.get("type")
    if kind == "actions":
        return [e for e in block.get("elements") or [] if isinstance(e, dict)]
    if kind == "section" and isinstance(block.get("accessory"), dict):
        accessory: dict[str, Any] = block["accessory"]
        return [accessory] if accessory.get("type") != "image" else []
    if kind == "input" and isinstance(block.get("element"), dict):
        return [block["element"]]
    return []
