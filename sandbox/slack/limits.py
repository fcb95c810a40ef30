"""Slack's Block Kit limits, checked the way Slack answers them: ``invalid_blocks`` with a
list of messages pointing at the offending field."""

from __future__ import annotations

from typing import Any

from sandbox.slack.blocks import BLOCK_TYPES, block_elements

MAX_BLOCKS = 50
MAX_TEXT = 40_000
"""chat.postMessage's ``text``: above this Slack answers ``msg_too_long``."""


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def text(
        self, obj: Any, pointer: str, limit: int, *, plain: bool = False, required: bool = True
    ) -> None:
        if obj is None:
            if required:
                self.fail("missing required field: text", pointer)
            return
        if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
            self.fail("must be a text object", pointer)
            return
        if plain and obj.get("type") != "plain_text":
            self.fail("must be a plain_text object", pointer + "/type")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.fail("must be a non-empty string", pointer + "/text")
        elif len(text) > limit:
            self.fail(f"must be less than {limit + 1} characters", pointer + "/text")

    def length(self, value: Any, limit: int, pointer: str) -> None:
        if value is not None and len(str(value)) > limit:
            self.fail(f"must be less than {limit + 1} characters", pointer)

    def element(self, element: dict[str, Any], pointer: str) -> None:
        self.length(element.get("action_id"), 255, pointer + "/action_id")
        kind = element.get("type")
        if kind == "button":
            self.text(element.get("text"), pointer + "/text", 75, plain=True)
            self.length(element.get("value"), 2000, pointer + "/value")
            self.length(element.get("url"), 3000, pointer + "/url")
        elif kind in ("overflow", "static_select", "radio_buttons", "checkboxes"):
            options = element.get("options") or []
            limit = 5 if kind == "overflow" else 100
            if not options or len(options) > limit:
                self.fail(f"must have 1 to {limit} options", pointer + "/options")
            for i, option in enumerate(options):
                self.text(option.get("text"), f"{pointer}/options/{i}/text", 75)
                self.length(option.get("value"), 150, f"{pointer}/options/{i}/value")
        confirm = element.get("confirm")
        if isinstance(confirm, dict):
            self.text(confirm.get("title"), pointer + "/confirm/title", 100, plain=True)
            self.text(confirm.get("text"), pointer + "/confirm/text", 300)
            self.text(confirm.get("confirm"), pointer + "/confirm/confirm", 30, plain=True)
            self.text(confirm.get("deny"), pointer + "/confirm/deny", 30, plain=True)

    def block(self, block: Any, pointer: str, seen_ids: set[str]) -> None:
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            self.fail("unsupported block type", pointer + "/type")
            return
        block_id = block.get("block_id")
        if block_id is not None:
            self.length(block_id, 255, pointer + "/block_id")
            if block_id in seen_ids:
                self.fail("duplicate block_id", pointer + "/block_id")
            seen_ids.add(str(block_id))
        kind = block["type"]
        if kind == "header":
            self.text(block.get("text"), pointer + "/text", 150, plain=True)
        elif kind == "section":
            fields = block.get("fields")
            if block.get("text") is None and not fields:
                self.fail("must provide text or fields", pointer)
            self.text(block.get("text"), pointer + "/text", 3000, required=False)
            if fields is not None and len(fields) > 10:
                self.fail("must have at most 10 items", pointer + "/fields")
            for i, item in enumerate(fields or []):
                self.text(item, f"{pointer}/fields/{i}", 2000)
        elif kind == "context":
            elements = block.get("elements") or []
            if not elements or len(elements) > 10:
                self.fail("must have 1 to 10 elements", pointer + "/elements")
        elif kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > 25:
                self.fail("must have 1 to 25 elements", pointer + "/elements")
            action_ids = [e.get("action_id") for e in elements if isinstance(e, dict)]
            if len({a for a in action_ids if a}) < len([a for a in action_ids if a]):
                self.fail("duplicate action_id", pointer + "/elements")
        for i, (element, _) in enumerate(block_elements(block)):
            where = f"{pointer}/elements/{i}" if kind == "actions" else f"{pointer}/accessory"
            self.element(element, where if kind != "input" else pointer + "/element")


def check_blocks(blocks: Any) -> list[str]:
    """Slack's complaints about these blocks; empty when Slack would accept them."""
    checker = _Checker()
    if not isinstance(blocks, list):
        checker.fail("must be an array", "/blocks")
        return checker.errors
    if len(blocks) > MAX_BLOCKS:
        checker.fail(f"must be less than {MAX_BLOCKS + 1} items", "/blocks")
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        checker.block(block, f"/blocks/{index}", seen)
    return checker.errors
