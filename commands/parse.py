"""Parse the text of `/invoice ...` into a typed command. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from services.errors import UsageError
from services.models import RecordType

MAX_TEXT = 200
"""Longer command text is refused before it is looked at."""

_NUMBER = re.compile(r"^#?(?=[A-Za-z0-9._/-]*\d)[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,19}[A-Za-z0-9])?$")
"""What the portal contract accepts: a letter or digit first and last, 21 characters."""
_RECORD_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")

USAGE = """\
*Usage*
• `/invoice check NUMBER`: both balances side by side, with a verdict
• `/invoice resync NUMBER`: resync that invoice in the portal and verify it
• `/invoice resync company ID` / `/invoice resync contact ID`: resync that record
• `/invoice resync [--since YYYY-MM-DD]`: full resync of the integration
• `/invoice history`: the integration's recent sync runs
• `/invoice digest`: compare every open invoice now
• `/invoice help`: this text"""


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Check:
    number: str


@dataclass(frozen=True)
class ResyncInvoice:
    number: str


@dataclass(frozen=True)
class ResyncRecord:
    record_type: RecordType
    record_id: str


@dataclass(frozen=True)
class FullResync:
    since: date | None = None


@dataclass(frozen=True)
class History:
    pass


@dataclass(frozen=True)
class Digest:
    pass


Command = Help | Check | ResyncInvoice | ResyncRecord | FullResync | History | Digest


def parse_number(raw: str) -> str:
    """An invoice number as the accounting package spells it (e.g. `11260`, `INV-0042`)."""
    if not _NUMBER.match(raw):
        raise UsageError(
            f"`{_clip(raw)}` is not an invoice number: letters, digits and `. _ / -` inside, "
            "starting and ending with a letter or digit, e.g. `11260`."
        )
    return raw.removeprefix("#")


def parse_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"`{_clip(raw)}` is not a date: use YYYY-MM-DD.") from None


def parse(text: str) -> Command:
    """The command in ``text`` (what follows `/invoice`), or UsageError."""
    if len(text) > MAX_TEXT:
        raise UsageError("That command is too long.")
    words = text.split()
    if not words:
        raise UsageError("Tell me what to do.")
    verb, args = words[0].lower(), words[1:]
    if verb == "help" and not args:
        return Help()
    if verb in ("history", "digest"):
        if args:
            raise UsageError(
                f"`{verb}` takes nothing after it: `/invoice {verb}`"
                + (
                    " lists the integration's recent sync runs."
                    if verb == "history"
                    else " compares every open invoice now."
                )
            )
        return History() if verb == "history" else Digest()
    if verb == "check":
        if len(args) != 1:
            raise UsageError("`check` takes one invoice number, e.g. `/invoice check 11260`.")
        return Check(parse_number(args[0]))
    if verb == "resync":
        return _parse_resync(args)
    raise UsageError(f"I don't know `{_clip(words[0])}`.")


def _parse_resync(args: list[str]) -> Command:
    if not args:
        return FullResync()
    if args[0] == "--since":
        if len(args) != 2:
            raise UsageError("`--since` takes one date, e.g. `--since 2026-11-25`.")
        return FullResync(since=parse_date(args[1]))
    kind = args[0].lower()
    if kind in (RecordType.COMPANY, RecordType.CONTACT):
        if len(args) != 2 or not _RECORD_ID.match(args[1]):
            raise UsageError(
                f"`resync {kind}` takes one id (letters and digits, `. _ -` inside), "
                f"e.g. `/invoice resync {kind} 58`."
            )
        return ResyncRecord(RecordType(kind), args[1])
    if len(args) != 1:
        raise UsageError("`resync` takes one invoice number, e.g. `/invoice resync 11260`.")
    return ResyncInvoice(parse_number(args[0]))


def _clip(raw: str, limit: int = 30) -> str:
    cleaned = raw.replace("`", "'")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
