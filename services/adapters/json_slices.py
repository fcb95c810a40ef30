"""JSON decoded a slice at a time: a long answer (a QuickBooks page of 1000 invoices, ~1.4 MB)
takes ~30 ms to decode in one go, which would keep the event loop, and the other side's
answers, waiting. ``loads_in_slices`` walks the outer levels itself and gives the loop a turn
every ``PARSE_SLICE`` array elements; it can also turn each element of one array into
something smaller as soon as it is decoded (``each``), so the full documents never coexist."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

PARSE_SLICE = 50
"""Array elements decoded between two turns of the event loop (~1.5 ms of invoices)."""
Each = tuple[tuple[str, ...], Callable[[Any], Any]]
"""(path of keys to an array of the answer, what to make of each of its elements)."""

_DECODER = json.JSONDecoder(parse_float=Decimal)
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_SPACE = re.compile(r"[ \t\n\r]*")


async def loads_in_slices(text: str, *, depth: int = 3, each: Each | None = None) -> Any:
    """What ``parse_json`` returns, decoded a slice at a time: the objects and arrays of the
    outer ``depth`` levels are walked here, and the event loop gets a turn every
    ``PARSE_SLICE`` elements of their arrays (the invoices of a query answer), so a long
    answer never keeps the other side's answers waiting. ``each`` = (path, read): the
    elements of the array at that path of keys are replaced by what ``read`` makes of each,
    as soon as it is decoded. Raises ValueError as ``parse_json`` does."""
    walk = _Walk(text, depth, each)
    decoded, end = await walk.value(0, ())
    if walk.space(end) != len(text):
        raise ValueError(f"extra data at {end}")
    return decoded


class _Walk:
    """``loads_in_slices``' state (a class, not closures: a closure that calls itself is a
    reference cycle, which would keep the whole answer alive until the next full GC)."""

    def __init__(self, text: str, depth: int, each: Each | None) -> None:
        self.text, self.depth, self.seen = text, depth, 0
        self.path: tuple[str, ...] = each[0] if each is not None else ()
        self.read: Callable[[Any], Any] | None = each[1] if each is not None else None

    def space(self, at: int) -> int:
        found = _SPACE.match(self.text, at)
        return at if found is None else found.end()

    async def value(self, at: int, path: tuple[str, ...]) -> tuple[Any, int]:
        text, space = self.text, self.space
        at = space(at)
        opening = text[at : at + 1]
        if len(path) >= self.depth or opening not in ("{", "["):
            return _DECODER.raw_decode(text, at)
        closing = "}" if opening == "{" else "]"
        read = self.read if path == self.path else None
        members: dict[str, Any] = {}
        items: list[Any] = []
        at = space(at + 1)
        if text[at : at + 1] == closing:
            return (members if opening == "{" else items), at + 1
        while True:
            if opening == "{":
                if text[at : at + 1] != '"':
                    raise ValueError(f"a property name expected at {at}")
                key, at = _scanstring(text, at + 1)
                at = space(at)
                if text[at : at + 1] != ":":
                    raise ValueError(f"':' expected at {at}")
                member, at = await self.value(at + 1, (*path, key))
                members[key] = member
            else:
                item, at = await self.value(at, (*path, ""))
                items.append(item if read is None else read(item))
                self.seen += 1
                if self.seen % PARSE_SLICE == 0:
                    await asyncio.sleep(0)
            at = space(at)
            separator = text[at : at + 1]
            if separator == closing:
                return (members if opening == "{" else items), at + 1
            if separator != ",":
                raise ValueError(f"',' or {closing!r} expected at {at}")
            at = space(at + 1)
