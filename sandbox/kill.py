"""A fault hook for the sandbox servers: SIGKILL a process right after the server answered a
chosen request, so that process has told a system something and not yet recorded it.

    switch = KillSwitch()                     # served by each sandbox server (KillAfter)
    switch.arm(pid, lambda r: r.path.endswith("/chat.postMessage") and b'"outcome"' in r.body)
    ...                                       # the process dies after the matching answer
    assert switch.fired

The request is matched on its method, path and body; ``nth`` picks the nth match. Only
the test process arms it; nothing in the bot knows it is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    body: bytes


@dataclass
class Trigger:
    pid: int
    when: Callable[[Seen], bool]
    nth: int = 1
    matched: int = 0
    fired: asyncio.Event = field(default_factory=asyncio.Event)
    request: Seen | None = None
    """The request after whose answer the process was killed."""


@dataclass
class KillSwitch:
    triggers: list[Trigger] = field(default_factory=list)

    def arm(self, pid: int, when: Callable[[Seen], bool], *, nth: int = 1) -> Trigger:
        trigger = Trigger(pid, when, nth)
        self.triggers.append(trigger)
        return trigger

    def disarm(self) -> None:
        self.triggers.clear()

    def due(self, seen: Seen) -> Trigger | None:
        """The trigger this request sets off (counted here), if any."""
        for trigger in self.triggers:
            if trigger.fired.is_set() or not trigger.when(seen):
                continue
            trigger.matched += 1
            if trigger.matched == trigger.nth:
                return trigger
        return None


class KillAfter:
    """ASGI middleware: reads the request's body as it passes, and after the last byte of
    the answer was sent, kills the process of the trigger the request set off."""

    def __init__(self, app: ASGIApp, switch: KillSwitch) -> None:
        self.app, self.switch = app, switch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.switch.triggers:
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def reading() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
            return message

        async def answering(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                seen = Seen(str(scope["method"]), str(scope["path"]), bytes(body))
                trigger = self.switch.due(seen)
                if trigger is not None:
                    kill(trigger, seen)

        await self.app(scope, reading, answering)


def kill(trigger: Trigger, seen: Seen) -> None:
    trigger.request = seen
    with contextlib.suppress(ProcessLookupError):
        os.kill(trigger.pid, signal.SIGKILL)
    trigger.fired.set()
