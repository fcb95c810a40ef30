"""The portal's cursor listing: pages decoded by msgspec (only the listing's fields), each next
page asked for as soon as the current one is decoded, before the current one is handed on."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from sandbox.portal.connect import DEFAULT_API_KEY
from services.adapters.portal import PortalClient, listing
from services.errors import UpstreamError

KEY = SecretStr(DEFAULT_API_KEY)


def _row(number: int) -> dict[str, Any]:
    return {
        "number": str(number),
        "external_id": None,
        "customer": {"id": "1", "name": "Acme"},
        "total": "10.00",
        "balance": "10.00",
        "currency": "USD",
        "status": "open",
        "integration_id": "int-1",
        "last_synced_at": None,
        "updated_at": None,
    }


def pages_answering(write: Any, pages: int = 3) -> tuple[httpx.MockTransport, list[str | None]]:
    """A portal of ``pages`` pages of two invoices; ``write`` renders each answer's bytes.
    Also returns the cursors asked for, in order."""
    asked: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        asked.append(cursor)
        index = 0 if cursor is None else int(cursor.removeprefix("ab"))
        rows = [_row(10_000 + 2 * index), _row(10_001 + 2 * index)]
        following = f"ab{index + 1}" if index + 1 < pages else None
        return httpx.Response(200, content=write(rows, following, index))

    return httpx.MockTransport(answer), asked


class Outcomes:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def request(self, system: str, outcome: str) -> None:
        self.seen.append(outcome)

    def retry(self, system: str, reason: str) -> None: ...

    def secret(self, value: str) -> None: ...


async def listed(transport: httpx.MockTransport, observer: Outcomes | None = None) -> list[str]:
    portal = PortalClient(
        base_url="http://portal.test", api_key=KEY, transport=transport, observer=observer
    )
    try:
        return [n async for page in portal.iter_open_invoices(page_size=2) for n, _ in page]
    finally:
        await portal.aclose()


async def test_the_cursor_is_followed_wherever_and_however_the_answer_writes_it() -> None:
    def cursor_first(rows: list[Any], following: str | None, _: int) -> bytes:
        return json.dumps({"next_cursor": following, "invoices": rows}).encode()

    def cursor_escaped(rows: list[Any], following: str | None, _: int) -> bytes:
        body = json.dumps({"invoices": rows, "next_cursor": following})
        return body.replace('"ab', '"a' + chr(92) + "u0062").encode()  # escaped, the same string

    for write in (cursor_first, cursor_escaped):
        transport, asked = pages_answering(write)
        outcomes = Outcomes()
        assert await listed(transport, outcomes) == [str(n) for n in range(10_000, 10_006)]
        assert outcomes.seen == ["ok", "ok", "ok"]
        assert asked == [None, "ab1", "ab2"]  # each page once, none asked twice


async def test_a_page_that_is_not_json_is_an_error() -> None:
    def broken_second_page(rows: list[Any], following: str | None, index: int) -> bytes:
        body = json.dumps({"invoices": rows, "next_cursor": following})
        return (body[: len(body) // 2] if index == 1 else body).encode()  # cut short

    transport, asked = pages_answering(broken_second_page)
    outcomes = Outcomes()
    with pytest.raises(UpstreamError, match="invalid JSON"):
        await listed(transport, outcomes)
    assert asked == [None, "ab1"]  # nothing asked past the broken page
    assert outcomes.seen == ["ok", "error"]  # each page counted once, as it was


async def test_a_portal_paging_in_circles_is_an_error_not_a_hang() -> None:
    def back_to_the_first(rows: list[Any], following: str | None, index: int) -> bytes:
        return json.dumps({"invoices": rows, "next_cursor": "ab1"}).encode()

    transport, asked = pages_answering(back_to_the_first)
    with pytest.raises(UpstreamError, match="repeat a cursor"):
        await asyncio.wait_for(listed(transport), 5)
    assert asked == [None, "ab1"]


class SlowPages(httpx.AsyncBaseTransport):
    """Three pages of two invoices, each answered after ``latency``; ``before_sending``
    (cursor -> what to await first) stands for a request slow to leave; ``refuse_once``
    cursors fail to connect on their first attempt."""

    def __init__(self, *, latency: float = 0.05) -> None:
        self.latency = latency
        self.events: list[str] = []
        self.before_sending: dict[str, asyncio.Event] = {}
        self.refuse_once: set[str] = set()
        self.cancelled: list[str] = []
        self.asked: dict[str, asyncio.Event] = {c: asyncio.Event() for c in ("ab1", "ab2")}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor") or "first"
        try:
            if cursor in self.before_sending:
                await self.before_sending[cursor].wait()
            if cursor in self.refuse_once:
                self.refuse_once.discard(cursor)
                raise httpx.ConnectError("refused", request=request)
            self.events.append(f"asked {cursor}")
            if cursor in self.asked:
                self.asked[cursor].set()
            await asyncio.sleep(self.latency)
        except asyncio.CancelledError:
            self.cancelled.append(cursor)
            raise
        index = 0 if cursor == "first" else int(cursor.removeprefix("ab"))
        rows = [_row(10_000 + 2 * index), _row(10_001 + 2 * index)]
        following = f"ab{index + 1}" if index < 2 else None
        return httpx.Response(200, json={"invoices": rows, "next_cursor": following})


async def test_the_next_page_is_asked_for_before_the_current_one_is_handed_on() -> None:
    transport = SlowPages()
    portal = PortalClient(base_url="http://portal.test", api_key=KEY, transport=transport)
    read: list[str] = []
    async for page in portal.iter_open_invoices(page_size=2):
        read.append(page[0][0])
        following = {1: "ab1", 2: "ab2"}.get(len(read))
        if following is not None:  # holding this page, the next one is already asked for
            await asyncio.wait_for(transport.asked[following].wait(), 5)
    await portal.aclose()
    assert read == ["10000", "10002", "10004"]
    assert transport.events == ["asked first", "asked ab1", "asked ab2"]


async def test_a_scan_cancelled_while_the_next_request_waits_leaves_nothing_behind() -> None:
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: problems.append(context))
    transport = SlowPages(latency=0.01)
    transport.before_sending["ab1"] = asyncio.Event()  # never set: the request never leaves
    portal = PortalClient(base_url="http://portal.test", api_key=KEY, transport=transport)
    pages: list[str] = []
    first_read = asyncio.Event()

    async def scan() -> None:
        async for page in portal.iter_open_invoices(page_size=2):
            pages.append(page[0][0])
            first_read.set()

    task = asyncio.create_task(scan())
    await asyncio.wait_for(first_read.wait(), 5)  # the first page is in, the second waits
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await portal.aclose()
    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert pages == ["10000"] and transport.cancelled == ["ab1"] and problems == []


async def test_a_next_request_that_fails_to_connect_is_retried() -> None:
    transport = SlowPages(latency=0.01)
    transport.refuse_once.add("ab1")
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    portal = PortalClient(
        base_url="http://portal.test", api_key=KEY, transport=transport, sleep=no_wait
    )
    numbers = [page[0][0] async for page in portal.iter_open_invoices(page_size=2)]
    await portal.aclose()
    assert numbers == ["10000", "10002", "10004"] and len(waits) == 1


async def test_a_page_is_decoded_into_objects_the_collector_does_not_track() -> None:
    """A page's rows hold no containers: untracked, a page in flight never sets off a full
    collection of the bot's process (``services.adapters.qbo.listing``'s docstring)."""
    content = json.dumps({"invoices": [_row(1), _row(2)], "next_cursor": None}).encode()
    page = listing._DECODER.decode(content)
    parts = [page, *page.invoices, *(row.customer for row in page.invoices)]
    assert len(parts) == 5 and not any(gc.is_tracked(part) for part in parts)
