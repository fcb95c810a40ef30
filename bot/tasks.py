"""Background work started after the ack: kept referenced until it ends, its errors routed to
a hook, and wound down when the process stops.

Two kinds, the same in HTTP and Socket Mode:

- **Request work** (``spawn``): what a Slack request asked for (a check, the steps before a
  resync job exists). At most ``max_running`` run at once; more waits its turn, so a burst of
  commands does not make every connection pool and the database queue up at once.
- **Long jobs** (``spawn_long``): resyncs and digests, which may run for minutes. Their state
  is in the database (they resume after a restart), and they never take a request's slot: a
  long resync does not hold back the next person's check.

Stopping (``wind_down``, at SIGTERM): nothing new starts; running request work gets ``grace``
seconds to finish; what is left is then cancelled (a cancelled resync job hands its claim to
the other replicas, see bot/flows/replicas.py). Work that never began is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from enum import StrEnum
from typing import Any, Protocol

log = logging.getLogger(__name__)

ErrorHook = Callable[[BaseException], Awaitable[None]]

MAX_RUNNING = 32
"""Request work running at once (each is a few requests to QuickBooks, the portal, Slack)."""


class Handoff(Protocol):
    """Where a listener hands its work after the ack: the work's name and the request's
    body, nothing else, so the work can run in this process (``bot.work.InProcess``) or in
    the worker process (``bot.work.ToWorker``)."""

    def hand_off(self, name: str, body: dict[str, Any]) -> None: ...


class Kind(StrEnum):
    REQUEST = "request"
    LONG = "long"


class TaskRunner:
    def __init__(self, *, max_running: int = MAX_RUNNING) -> None:
        self.max_running = max_running
        self._slots = asyncio.Semaphore(max_running)
        self._tasks: dict[asyncio.Task[Any], Kind] = {}
        self._unstarted: set[asyncio.Task[Any]] = set()
        self._stopping = False

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def count(self, kind: Kind, *, waiting: bool = False) -> int:
        """Tasks of ``kind`` running (or, with ``waiting``, not begun yet)."""
        return sum(
            1
            for task, k in self._tasks.items()
            if k is kind and (task in self._unstarted) == waiting
        )

    def spawn(
        self, work: Coroutine[Any, Any, Any], *, name: str, on_error: ErrorHook | None = None
    ) -> asyncio.Task[None] | None:
        """Request work: runs when one of the ``max_running`` slots is free."""
        return self._start(work, Kind.REQUEST, name=name, on_error=on_error)

    def spawn_long(
        self, work: Coroutine[Any, Any, Any], *, name: str, on_error: ErrorHook | None = None
    ) -> asyncio.Task[None] | None:
        """A long job (a resync, a digest): runs now, outside the request slots."""
        return self._start(work, Kind.LONG, name=name, on_error=on_error)

    def _start(
        self, work: Coroutine[Any, Any, Any], kind: Kind, *, name: str, on_error: ErrorHook | None
    ) -> asyncio.Task[None] | None:
        if self._stopping:
            log.warning("stopping: %s not started", name)
            work.close()
            return None
        task = asyncio.create_task(self._guard(work, kind, name=name, on_error=on_error), name=name)
        self._tasks[task] = kind
        self._unstarted.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.pop(finished, None)
            if finished in self._unstarted:  # cancelled before it began: it never ran
                self._unstarted.discard(finished)
                work.close()

        task.add_done_callback(done)
        return task

    async def _guard(
        self, work: Coroutine[Any, Any, Any], kind: Kind, *, name: str, on_error: ErrorHook | None
    ) -> None:
        if kind is Kind.LONG:
            await self._run(work, name=name, on_error=on_error)
            return
        async with self._slots:
            await self._run(work, name=name, on_error=on_error)

    async def _run(
        self, work: Coroutine[Any, Any, Any], *, name: str, on_error: ErrorHook | None
    ) -> None:
        if (task := asyncio.current_task()) is not None:
            self._unstarted.discard(task)
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
        """Wait for every task (and the tasks they start) to finish, or ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._tasks:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return
            await asyncio.wait(set(self._tasks), timeout=remaining)

    async def wind_down(self, grace: float) -> None:
        """The process is stopping: start nothing new, give request work ``grace`` seconds
        to finish, then cancel whatever is left (long jobs resume in another replica)."""
        self._stopping = True
        requests = {t for t, k in self._tasks.items() if k is Kind.REQUEST}
        if requests:
            await asyncio.wait(requests, timeout=grace)
        if self._unstarted:
            names = sorted({t.get_name() for t in self._unstarted})
            log.warning(
                "stopping: %d background task(s) cancelled before they began (%s)",
                len(self._unstarted),
                ", ".join(names),
            )
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
