"""One HTTP exchange, its body read apart from the response.

httpx's response and its stream refer to each other (encode/httpx#3733), so a response is
freed only when Python's cyclic collector next runs, not when the last reference goes; a
response that holds its body (``response.content``) would keep each 1.4 MB listing page
alive until then. Reading a 2xx body through httpx's streaming API keeps it out of the
response: the page is freed as soon as it is decoded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

HeadersHook = Callable[[httpx.Response], None]
"""Called with a 2xx answer as soon as its headers are in, before its body is read."""


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    on_headers: HeadersHook | None = None,
    **options: Any,
) -> tuple[httpx.Response, bytes]:
    """The answer and its body. An error answer (not 2xx) is also read into the response as
    usual (it is short), so its ``text`` and ``json()`` work."""
    async with http.stream(method, url, **options) as response:
        if not response.is_success:
            return response, await response.aread()
        if on_headers is not None:
            on_headers(response)
        return response, b"".join([chunk async for chunk in response.aiter_bytes()])


def next_page_cursor(response: httpx.Response) -> str | None:
    """The ``cursor`` of the answer's ``Link: <URL>; rel="next"`` header, if it has one."""
    link = response.links.get("next")
    if not link or "url" not in link:
        return None
    cursor = httpx.URL(link["url"]).params.get("cursor")
    return None if cursor is None else str(cursor)
