"""The fake portal's gate: request counters, latency, injected faults and the API key."""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.portal.records import Fault
from sandbox.portal.state import PortalState
from sandbox.portal.wire import error_response


class DroppedConnection(Exception):
    """Raised after half an answer so that the server closes the connection."""


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging the deliberate drop as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


async def drop(send: Send) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"invoices": [', "more_body": True})
    raise DroppedConnection("connection dropped on purpose (fault injection)")


quiet_drops = _QuietDrops()


class Gate:
    """Counts requests, adds latency, plays injected faults, checks the API key."""

    def __init__(self, app: ASGIApp, state: PortalState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state, path = self.state, scope["path"]
        state.requests[f"{scope['method']} {path}"] += 1
        request_id = secrets.token_hex(8)
        fault = await self._delay_and_fault(path)
        if fault is not None and fault.kind == "drop":
            await drop(send)
        response = await self._refusal(scope, fault)
        if response is not None:
            response.headers["X-Request-Id"] = request_id
            await response(scope, receive, send)
            return

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)

    async def _delay_and_fault(self, path: str) -> Fault | None:
        if self.state.latency > 0:
            await asyncio.sleep(self.state.latency)
        return self.state.take_fault(path)

    async def _refusal(self, scope: Scope, fault: Fault | None) -> Response | None:
        state = self.state
        if fault is not None and fault.kind == "timeout":
            await asyncio.sleep(state.timeout_seconds)
            return error_response(504, "timeout", "The portal timed out.")
        if fault is not None:
            headers = (
                {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
            )
            code = {429: "rate_limited", 503: "unavailable", 504: "timeout"}.get(
                fault.status, "internal_error"
            )
            return error_response(fault.status, code, "Injected fault.", headers=headers)
        key = dict(scope["headers"]).get(b"x-api-key", b"")
        if not hmac.compare_digest(key, state.api_key.encode()):
            return error_response(401, "unauthorized", "Missing or invalid API key.")
        return None
