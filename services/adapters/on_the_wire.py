"""Getting a cursor listing's next request out early: its pages follow one another, so every
millisecond between one page's arrival and the next request's departure is paid once a page.

- The next cursor is read from the end of the raw answer (``cursor_at_end``) before the
  answer is decoded (~2 ms for 1000 invoices); the decoded answer confirms it.
- The current page is read only once the next request is on the wire (``sent_signal``,
  ``until_sent``). Until then the event loop belongs to the request: httpcore writes it in
  several steps, each one a turn of the loop; reading the page first held each next
  request back by ~4.5 ms (bench/digest.py).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

_TAIL = 512
_CURSOR_AT_END = re.compile(rb'[{,]\s*"next_cursor"\s*:\s*(?:"([^"\\]*)"|null)\s*}\s*$')


def cursor_at_end(raw: bytes) -> str | None:
    """The ``next_cursor`` of a JSON object whose last member it is, read from the raw bytes
    (a plain string only; anything else is None, and left to the decoded answer)."""
    match = _CURSOR_AT_END.search(raw, max(0, len(raw) - _TAIL))
    if match is None or match.group(1) is None:
        return None
    try:
        return match.group(1).decode()
    except UnicodeDecodeError:
        return None


MAX_WAIT = 1.0
"""Seconds at most that the current page waits for the next request to leave."""


def sent_signal() -> tuple[asyncio.Future[None], dict[str, Any]]:
    """A future resolved once the request is sent, or once a step of sending it failed (a
    retry would follow, after a pause: the current page need not wait for it), and the
    httpx ``extensions`` to send it with (httpcore's ``trace`` hook)."""
    sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def trace(name: str, info: dict[str, Any]) -> None:
        over = name.endswith(("send_request_body.complete", ".failed"))
        if over and not sent.done():
            sent.set_result(None)

    return sent, {"trace": trace}


async def until_sent(
    sent: asyncio.Future[None], fetch: asyncio.Future[Any], *, limit: float = MAX_WAIT
) -> None:
    """Wait until the request is on the wire, ``fetch`` is over (it failed, or its transport,
    such as ``httpx.MockTransport``, sends no trace events), or ``limit`` seconds passed."""
    if sent.done() or fetch.done():
        return
    fetch.add_done_callback(lambda _: None if sent.done() else sent.set_result(None))
    await asyncio.wait((sent,), timeout=limit)
