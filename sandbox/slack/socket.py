"""Socket Mode, Slack's side: `apps.connections.open` hands out a WebSocket URL; requests
go to the app as envelopes over it, and the app acks each envelope within Slack's 3 s."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect


class SocketHub:
    def __init__(self) -> None:
        self.connections: list[WebSocket] = []
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tickets: set[str] = set()
        self._next = 0

    @property
    def connected(self) -> bool:
        return bool(self.connections)

    def new_ticket(self) -> str:
        ticket = secrets.token_urlsafe(12)
        self._tickets.add(ticket)
        return ticket

    async def endpoint(self, websocket: WebSocket) -> None:
        ticket = websocket.query_params.get("ticket", "")
        if ticket not in self._tickets:
            await websocket.close(code=4001)
            return
        await websocket.accept()
        await websocket.send_text(
            json.dumps({"type": "hello", "num_connections": len(self.connections) + 1})
        )
        self.connections.append(websocket)
        try:
            while True:
                ack = json.loads(await websocket.receive_text())
                future = self._pending.pop(str(ack.get("envelope_id", "")), None)
                if future is not None and not future.done():
                    future.set_result(ack)
        except (WebSocketDisconnect, json.JSONDecodeError):
            pass
        finally:
            with contextlib.suppress(ValueError):
                self.connections.remove(websocket)

    async def deliver(
        self, kind: str, payload: dict[str, Any], *, timeout: float
    ) -> dict[str, Any] | None:
        """Send one envelope to a connected app; its ack, or None when none came in time."""
        if not self.connections:
            raise ConnectionError("no Socket Mode connection")
        self._next += 1
        envelope_id = f"env-{self._next}-{secrets.token_hex(4)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[envelope_id] = future
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind == "slash_commands",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        await self.connections[-1].send_text(json.dumps(envelope))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            self._pending.pop(envelope_id, None)

    async def close(self) -> None:
        for websocket in list(self.connections):
            with contextlib.suppress(Exception):
                await websocket.close()
        self.connections.clear()
