"""One HTTP exchange, its body read apart from the response.

httpx's response and its stream refer to each other (encode/httpx#3733), so a response is
freed only when Python's cyclic collector next runs, not when the last reference goes; a
response that holds its body (``response.content``) would keep each 1.4 MB listing page
alive until then. Reading a 2xx body through httpx's streaming API keeps it out of the
response: the page is freed as soon as it is decoded."""

from __future__ import annotations

from typing import Any

import httpx


async def send(
    http: httpx.AsyncClient, method: str, url: str, **options: Any
) -> tuple[httpx.Response, bytes]:
    """The answer and its body. An error answer (not 2xx) is also read into the response as
    usual (it is short), so its ``text`` and ``json()`` work."""
    async with http.stream(method, url, **options) as response:
        if not response.is_success:
            return response, await response.aread()
        return response, b"".join([chunk async for chunk in response.aiter_bytes()])
