"""The message a guard's question came from, carried in the question's button (what the
click that asked showed): small, validated, and never more than a button holds."""

from __future__ import annotations

import base64
import json
import random
import zlib
from datetime import date

from commands.actions import (
    MAX_PACKED,
    MAX_VALUE,
    ButtonState,
    origin_of,
    pack_message,
    unpack_message,
)

CLICKED = {
    "ts": "1796592977.260985",
    "text": "Invoice 11261: the portal's resync failed",
    "blocks": [
        {"type": "section", "block_id": "a", "text": {"type": "mrkdwn", "text": "*Failed*"}},
        {"type": "actions", "block_id": "b", "elements": [{"type": "button", "value": "{}"}]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Requested by <@U1>"}]},
    ],
}


def packed_raw(payload: object) -> str:
    return base64.urlsafe_b64encode(zlib.compress(json.dumps(payload).encode())).decode()


def test_what_the_click_showed_comes_back_without_its_buttons() -> None:
    origin = origin_of(CLICKED)
    assert origin is not None and origin.ts == CLICKED["ts"] and origin.shown is not None
    state = ButtonState(
        invoice="11261", ack="0123456789abcdef", origin=origin.ts, shown=origin.shown
    )
    loaded = ButtonState.load(state.dump()).origin_message
    assert loaded == origin
    text, blocks = unpack_message(loaded.shown or "") or ("", [])
    assert text == CLICKED["text"]
    assert [b["type"] for b in blocks] == ["section", "context"]
    assert origin_of({"blocks": []}) is None  # an ephemeral: Slack sends no message


def test_a_message_too_large_to_carry_is_not_carried() -> None:
    rng = random.Random(7)
    noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(2900))
    big = {"ts": "1.2", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": noise}}]}
    assert pack_message(big) is None
    origin = origin_of(big)
    assert origin is not None and origin.shown is None  # its buttons stay; the guard re-checks


def test_the_largest_state_fits_a_button() -> None:
    state = ButtonState(
        invoice="X" * 21,
        since=date(2026, 12, 6),
        root="123456789012.12345678",
        ack="0123456789abcdef",
        origin="123456789012.12345678",
        shown="A" * MAX_PACKED,
    )
    assert len(state.dump()) <= MAX_VALUE


def test_anything_else_in_its_place_is_refused() -> None:
    assert unpack_message("not base64 at all!") is None
    assert unpack_message(packed_raw([1, 2])) is None
    assert unpack_message(packed_raw({"text": "x", "blocks": [{"type": "actions"}]})) is None
    bomb = packed_raw({"text": " " * 1_000_000, "blocks": []})
    assert len(bomb) < MAX_PACKED and unpack_message(bomb) is None
