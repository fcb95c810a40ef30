"""``Idempotency-Key`` on the fake portal's writes (``docs/portal-api.yaml``, v1.1).

A POST that carries a key and succeeds (2xx) is remembered for ``KEY_TTL``: the same key
with the same request (method, path, body) gets the same answer again, status, body and
``Location`` included, plus ``Idempotency-Replayed: true``, and nothing runs a second time.
The same key with a different request is refused (422 ``idempotency_key_reused``). A
request refused or failed (4xx, 5xx) is not remembered: retrying it with its key is fine.
Two requests with the same key at once: the second waits for the first and gets its answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from sandbox.portal.wire import ApiError, invalid

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotency-Replayed"
KEY_RE = re.compile(r"[!-~]{1,255}")
KEY_TTL = timedelta(hours=24)
KEPT_HEADERS = ("location",)

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Remembered:
    fingerprint: str
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    at: datetime

    def response(self) -> Response:
        headers = {**dict(self.headers), REPLAYED_HEADER: "true"}
        return Response(self.body, self.status, headers, media_type="application/json")


@dataclass
class IdempotencyStore:
    """The answers remembered by key, and the requests with a key still being answered."""

    answers: dict[str, Remembered] = field(default_factory=dict)
    pending: dict[str, asyncio.Future[None]] = field(default_factory=dict)

    def forget_before(self, moment: datetime) -> None:
        for key in [k for k, a in self.answers.items() if a.at < moment]:
            del self.answers[key]


def check_key(request: Request) -> None:
    """422 for an ``Idempotency-Key`` the contract does not allow."""
    key = request.headers.get(KEY_HEADER)
    if key is not None and not KEY_RE.fullmatch(key):
        raise invalid("Idempotency-Key must be 1 to 255 printable ASCII characters, no spaces.")


def idempotent(
    handler: Handler,
    store_of: Callable[[Request], IdempotencyStore],
    clock_of: Callable[[Request], datetime],
) -> Handler:
    """``handler``, honouring ``Idempotency-Key``."""

    async def answer(request: Request) -> Response:
        key = request.headers.get(KEY_HEADER)
        if key is None:
            return await handler(request)
        check_key(request)
        store, now = store_of(request), clock_of(request)
        store.forget_before(now - KEY_TTL)
        digest = hashlib.sha256(await request.body()).hexdigest()
        fingerprint = f"{request.method} {request.url.path} {digest}"
        while key in store.pending:  # the same key at the same time: wait for the first
            await asyncio.shield(store.pending[key])
        remembered = store.answers.get(key)
        if remembered is not None:
            if remembered.fingerprint != fingerprint:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used for a different request.",
                )
            return remembered.response()
        done = store.pending[key] = asyncio.get_running_loop().create_future()
        try:
            response = await handler(request)
            if 200 <= response.status_code < 300:
                kept = tuple(
                    (name, value)
                    for name, value in response.headers.items()
                    if name.lower() in KEPT_HEADERS
                )
                store.answers[key] = Remembered(
                    fingerprint, response.status_code, bytes(response.body), kept, now
                )
            return response
        finally:
            del store.pending[key]
            done.set_result(None)

    return answer
