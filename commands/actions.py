"""Action ids and the state carried in button values (validated JSON)."""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.errors import UsageError

MAX_VALUE = 2000
"""Slack's limit on a button's value."""


class ActionId(StrEnum):
    RESYNC_INVOICE = "resync_invoice"
    RESYNC_FULL = "resync_full"
    PICK_SYNC_DATE = "pick_sync_date"
    START_FULL_RESYNC = "start_full_resync"
    RESYNC_ANYWAY = "resync_anyway"
    CHECK_AGAIN = "check_again"
    MARK_ACCOUNTED = "mark_accounted"
    """Asks for the reason an unexplained difference is accounted for."""
    CONFIRM_ACCOUNTED = "confirm_accounted"
    ACCOUNTED_REASON = "accounted_reason"
    """The reason's text input (read from the message's state, dispatches nothing)."""
    PREPARE_FIX = "prepare_fix"
    APPROVE_FIX = "approve_fix"
    REJECT_FIX = "reject_fix"


ACTION_PATTERN = re.compile("^(" + "|".join(a.value for a in ActionId) + ")$")

_NUMBER = r"^[A-Za-z0-9._/-]{1,21}$"

MAX_PACKED = 1700
"""At most this much of a button's value holds the message the guard's question came from
(the rest of the state takes under 200 characters)."""
MAX_UNPACKED = 64_000
SHOWN_BLOCKS = {"section", "context", "header", "divider", "rich_text", "image"}


@dataclass(frozen=True)
class Origin:
    """The message whose button led to the guard's question: its ts, and what it showed
    (``pack_message``; None when too large to carry: its buttons then stay, and the guard
    still re-checks whatever they start)."""

    ts: str
    shown: str | None = None


def origin_of(message: Mapping[str, Any]) -> Origin | None:
    """The clicked message (Slack sends it with a click on a message's button) as an origin."""
    ts = str(message.get("ts") or "")
    return Origin(ts, pack_message(message)) if ts else None


def pack_message(message: Mapping[str, Any]) -> str | None:
    """A message's text and blocks but its buttons, compressed for a button's value; None
    when it does not fit."""
    blocks = message.get("blocks")
    if not isinstance(blocks, list):
        return None
    kept = [b for b in blocks if isinstance(b, dict) and b.get("type") != "actions"]
    raw = json.dumps({"text": str(message.get("text") or ""), "blocks": kept})
    packed = base64.urlsafe_b64encode(zlib.compress(raw.encode(), 9)).decode()
    return packed if len(packed) <= MAX_PACKED else None


def unpack_message(packed: str) -> tuple[str, list[dict[str, Any]]] | None:
    """The text and blocks ``pack_message`` carried, or None if they are not that."""
    try:
        inflate = zlib.decompressobj()
        raw = inflate.decompress(base64.urlsafe_b64decode(packed), MAX_UNPACKED)
        if inflate.unconsumed_tail:
            return None
        message = json.loads(raw)
    except (ValueError, zlib.error):
        return None
    if not isinstance(message, dict):
        return None
    text, blocks = message.get("text"), message.get("blocks")
    if not isinstance(text, str) or not isinstance(blocks, list):
        return None
    if not all(isinstance(b, dict) and b.get("type") in SHOWN_BLOCKS for b in blocks):
        return None
    return text, blocks


class ButtonState(BaseModel):
    """What a button remembers. Forged or malformed values are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    invoice: str | None = Field(default=None, pattern=_NUMBER)
    since: date | None = None
    root: str | None = Field(default=None, pattern=r"^\d{1,12}\.\d{1,8}$")
    """The ts of the invoice's check message (the thread root) to keep up to date."""
    ack: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    """The fingerprint of the amounts the person acknowledges the write takes out of view
    (services.guard): the guard re-reads the evidence and lets the write through only if
    they are still exactly these."""
    origin: str | None = Field(default=None, pattern=r"^\d{1,12}\.\d{1,8}$")
    """The ts of the message whose button led to the guard's question: once the question
    is answered and the write starts, that message's buttons are replaced too."""
    shown: str | None = Field(default=None, max_length=MAX_PACKED, pattern=r"^[A-Za-z0-9_-]+=*$")
    """That message as the click that asked showed it (``pack_message``): its buttons are
    replaced from this, without reading the channel's history (a scope the bot lacks)."""
    followup: int | None = Field(default=None, ge=1, le=2**31 - 1)
    """The follow-up a "Mark accounted for" button closes (that one only)."""
    proposal: str | None = Field(default=None, pattern=r"^[0-9a-f]{12}$")
    """A fix proposal in QuickBooks (services.fixes), for Approve and Reject."""

    @property
    def origin_message(self) -> Origin | None:
        return Origin(self.origin, self.shown) if self.origin else None

    def dump(self) -> str:
        value = self.model_dump_json(exclude_none=True)
        assert len(value) <= MAX_VALUE
        return value

    @classmethod
    def load(cls, raw: str | None) -> ButtonState:
        if not raw or len(raw) > MAX_VALUE:
            raise UsageError("That button is not valid any more.")
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            raise UsageError("That button is not valid any more.") from None
