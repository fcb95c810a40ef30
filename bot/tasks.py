"""Background work started after the ack: kept referenced, counted, never silently lost.

Acks come first. While Slack requests are being answered, new background work waits (for
a quiet moment of ``quiet`` seconds without a request, or ``max_delay`` at the latest), so
a burst of commands is acknowledged at the speed of the HTTP server and the work follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

ErrorHook = Callable[[BaseException], Awaitable[None]]


QUIET = 0.02
MAX_DELAY = 2.0


class BackgroundTasks:
    def __init__(self, *, quiet: float = QUIET, max_delay: float = MAX_DELAY) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.quiet, self.max_delay = quiet, max_delay
        self._requests = 0
        self._last_finished = 0.0
        self._timer = False
        self._open: asyncio.Event | None = None
        """Set while no Slack request is being answered (created in the running loop)."""

    def _gate(self) -> asyncio.Event:
        if self._open is None:
            self._open = asyncio.Event()
            if self._requests == 0:
                self._open.set()
        return self._open

    def request_started(self) -> None:
        """A Slack request arrived: hold back new work until it is answered."""
        self._requests += 1
        self._gate().clear()

    def request_finished(self) -> None:
        loop = asyncio.get_running_loop()
        self._requests = max(0, self._requests - 1)
        self._last_finished = loop.time()
        if self._requests == 0 and not self._timer:
            self._timer = True
            loop.call_later(self.quiet, self._open_if_quiet)

    def _open_if_quiet(self) -> None:
        """Open the gate once no request was answered for ``quiet`` seconds."""
        self._timer = False
        if self._requests:
            return  # the request in flight re-arms the timer when it finishes
        loop = asyncio.get_running_loop()
        idle = loop.time() - self._last_finished
        if idle >= self.quiet:
            self._gate().set()
        else:
            self._timer = True
            loop.call_later(self.quiet - idle, self._open_if_quiet)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(
        self, work: Coroutine[Any, Any, Any], *, name: str, on_error: ErrorHook | None = None
    ) -> asyncio.Task[Any]:
        """Run ``work`` in the background; exceptions go to ``on_error`` (lazy work's errors
        are never passed to bolt's error handler, so they are routed here)."""
        task = asyncio.create_task(self._guard(work, name=name, on_error=on_error), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(
        self, work: Coroutine[Any, Any, Any], *, name: str, on_error: ErrorHook | None
    ) -> None:
        try:
            await self._turn()
        except asyncio.CancelledError:
            work.close()  # cancelled before it began: nothing ran
            raise
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if on_error is None:
                log.exception("background task %s failed", name)
                return
            try:
                await on_error(exc)
            except Exception:
                log.exception("error hook of background task %s failed", name)

    async def _turn(self) -> None:
        """Wait until no Slack request is being answered (``max_delay`` at most)."""
        gate = self._gate()
        if not gate.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gate.wait(), self.max_delay)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for every running task (and the tasks they start) to finish."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._tasks:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            await asyncio.wait(set(self._tasks), timeout=remaining)
            if deadline is not None and loop.time() >= deadline:
                break

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
