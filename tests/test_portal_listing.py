"""The portal's cursor listing gets each next request out early: the cursor is read from the
end of the raw answer, the decoded answer confirms it, and the current page is read once the
next request is on the wire."""

from __future__ import annotations

import asyncio
import gc
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from sandbox.portal import DEFAULT_API_KEY
from services.adapters.on_the_wire import cursor_at_end, sent_signal, until_sent
from services.adapters.portal import PortalClient
from services.errors import UpstreamError
from tests.portal_world import running_world

KEY = SecretStr(DEFAULT_API_KEY)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"invoices":[],"next_cursor":"bjoxMTI2MA=="}', "bjoxMTI2MA=="),
        (b'{ "invoices": [],\n  "next_cursor" : "abc" }\n', "abc"),
        (b'{"invoices":[],"next_cursor":null}', None),
        (b'{"next_cursor":"abc","invoices":[]}', None),  # not the last member: not guessed
        (b'{"invoices":[],"next_cursor":"a\\u0062"}', None),  # escapes: left to the decoder
        (b'{"invoices":[],"meta":{"next_cursor":"abc"}}', None),  # nested, not the answer's
        (b'{"invoices":[{"number":"1","next_cursor":"abc"}]}', None),
        (b'{"invoices":[],"next_cursor":"\xff"}', None),
        (b"", None),
    ],
)
def test_the_cursor_is_read_from_the_end_of_the_raw_answer(
    raw: bytes, expected: str | None
) -> None:
    assert cursor_at_end(raw) == expected


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


async def test_a_cursor_the_raw_answer_does_not_show_is_followed_as_decoded() -> None:
    def cursor_first(rows: list[Any], following: str | None, _: int) -> bytes:
        return json.dumps({"next_cursor": following, "invoices": rows}).encode()

    def cursor_escaped(rows: list[Any], following: str | None, _: int) -> bytes:
        body = json.dumps({"invoices": rows, "next_cursor": following})
        return body.replace('"ab', '"a\\u0062').encode()  # the same string, written escaped

    for write in (cursor_first, cursor_escaped):
        transport, asked = pages_answering(write)
        outcomes = Outcomes()
        assert await listed(transport, outcomes) == [str(n) for n in range(10_000, 10_006)]
        assert outcomes.seen == ["ok", "ok", "ok"]
        assert asked == [None, "ab1", "ab2"]  # each page once, none asked twice


async def test_a_page_that_is_not_json_is_an_error_even_after_its_cursor_was_read() -> None:
    def broken_second_page(rows: list[Any], following: str | None, index: int) -> bytes:
        body = json.dumps({"invoices": rows, "next_cursor": following})
        return (body.replace("[", "[[", 1) if index == 1 else body).encode()

    transport, asked = pages_answering(broken_second_page)
    outcomes = Outcomes()
    with pytest.raises(UpstreamError, match="invalid JSON"):
        await listed(transport, outcomes)
    assert asked == [None, "ab1", "ab2"]  # the third was asked for from the raw cursor
    assert outcomes.seen == ["ok", "error"]  # each page counted once, as it was


async def test_the_signal_comes_when_the_request_is_on_the_wire_not_when_it_is_answered() -> None:
    async with running_world() as world:
        world.portal.latency = 2.0
        async with httpx.AsyncClient(base_url=world.portal_url) as http:
            sent, extensions = sent_signal()
            fetch = asyncio.ensure_future(
                http.get(
                    "/api/v1/invoices/11260",
                    headers={"X-API-Key": DEFAULT_API_KEY},
                    extensions=extensions,
                )
            )
            await asyncio.wait_for(until_sent(sent, fetch), 1.5)
            assert sent.done() and not fetch.done()
            response = await fetch
        assert Decimal(response.json()["balance"]) == Decimal("40.00")


async def test_without_trace_events_the_wait_ends_with_the_answer() -> None:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(204))
    ) as http:
        sent, extensions = sent_signal()
        fetch = asyncio.ensure_future(http.get("http://portal.test/", extensions=extensions))
        await asyncio.wait_for(until_sent(sent, fetch), 1)
        assert fetch.done() and (await fetch).status_code == 204


async def test_a_portal_paging_in_circles_is_an_error_not_a_hang() -> None:
    def back_to_the_first(rows: list[Any], following: str | None, index: int) -> bytes:
        return json.dumps({"invoices": rows, "next_cursor": "ab1"}).encode()

    transport, asked = pages_answering(back_to_the_first)
    with pytest.raises(UpstreamError, match="repeat a cursor"):
        await asyncio.wait_for(listed(transport), 5)
    assert asked == [None, "ab1"]


class TracedPages(httpx.AsyncBaseTransport):
    """Pages of two invoices, three pages, answered after ``latency``; the request's trace
    hook hears that it was sent, as httpcore tells it. ``before_sending`` (cursor -> what to
    await first) stands for a request slow to leave; ``refuse_once`` cursors fail to
    connect on their first attempt."""

    def __init__(self, *, latency: float = 0.2) -> None:
        self.latency = latency
        self.events: list[str] = []
        self.before_sending: dict[str, asyncio.Event] = {}
        self.refuse_once: set[str] = set()
        self.cancelled: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor") or "first"
        trace = request.extensions.get("trace")
        try:
            if cursor in self.before_sending:
                await self.before_sending[cursor].wait()
            if cursor in self.refuse_once:
                self.refuse_once.discard(cursor)
                if trace is not None:
                    await trace("connection.connect_tcp.failed", {})
                raise httpx.ConnectError("refused", request=request)
            if trace is not None:
                await trace("http11.send_request_body.complete", {})
            self.events.append(f"sent {cursor}")
            await asyncio.sleep(self.latency)
        except asyncio.CancelledError:
            self.cancelled.append(cursor)
            raise
        index = 0 if cursor == "first" else int(cursor.removeprefix("ab"))
        rows = [_row(10_000 + 2 * index), _row(10_001 + 2 * index)]
        following = f"ab{index + 1}" if index < 2 else None
        return httpx.Response(200, json={"invoices": rows, "next_cursor": following})


async def test_the_next_page_is_on_its_way_before_the_current_one_is_read() -> None:
    transport = TracedPages()
    portal = PortalClient(base_url="http://portal.test", api_key=KEY, transport=transport)
    started = asyncio.get_running_loop().time()
    async for page in portal.iter_open_invoices(page_size=2):
        transport.events.append(f"read {page[0][0]}")
    took = asyncio.get_running_loop().time() - started
    await portal.aclose()
    assert transport.events == [
        "sent first", "sent ab1", "read 10000", "sent ab2", "read 10002", "read 10004",
    ]  # fmt: skip
    assert took < 3 * 0.2 + 0.3  # three pages, one after the other, and nothing more


async def test_a_scan_cancelled_while_the_next_request_leaves_leaves_nothing_behind() -> None:
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: problems.append(context))
    transport = TracedPages(latency=0.01)
    transport.before_sending["ab1"] = asyncio.Event()  # never set: the request never leaves
    portal = PortalClient(base_url="http://portal.test", api_key=KEY, transport=transport)
    pages: list[str] = []

    async def scan() -> None:
        async for page in portal.iter_open_invoices(page_size=2):
            pages.append(page[0][0])

    task = asyncio.create_task(scan())
    await asyncio.sleep(0.2)  # the first page is in, the second request waits to leave
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    await portal.aclose()
    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert pages == [] and transport.cancelled == ["ab1"] and problems == []


async def test_a_next_request_that_fails_to_leave_does_not_hold_the_current_page() -> None:
    transport = TracedPages(latency=0.01)
    transport.refuse_once.add("ab1")
    retry = asyncio.Event()

    async def held_backoff(seconds: float) -> None:
        await retry.wait()  # the retry waits until the test lets it go

    portal = PortalClient(
        base_url="http://portal.test", api_key=KEY, transport=transport, sleep=held_backoff
    )
    pages = portal.iter_open_invoices(page_size=2)
    first = await asyncio.wait_for(anext(pages), 0.5)  # not held for the retry
    assert first[0][0] == "10000" and transport.events == ["sent first"]
    retry.set()
    rest = [page[0][0] async for page in pages]
    await portal.aclose()
    assert rest == ["10002", "10004"]
