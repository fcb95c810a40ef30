"""Action ids and the state carried in button values (validated JSON)."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Literal

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
    followup: int | None = Field(default=None, ge=1, le=2**31 - 1)
    """The follow-up a "Mark accounted for" button closes (that one only)."""
    proposal: str | None = Field(default=None, pattern=r"^[0-9a-f]{12}$")
    """A fix proposal in QuickBooks (services.fixes), for Approve and Reject."""

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
