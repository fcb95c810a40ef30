"""Background work started after the ack: kept referenced, counted, never silently lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

ErrorHook = Callable[[BaseException], Awaitable[None]]


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

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
