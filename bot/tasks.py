"""Background work started after the ack: kept referenced, counted, never silently lost
(work cancelled before it began, when the process stops, is logged).

Acks come first. While Slack requests are being answered, new background work is held
until a quiet moment (``quiet`` seconds without a request) or for ``max_delay`` seconds at
the most, so a burst of commands is acknowledged at the speed of the HTTP server and the
work follows. Held work costs one shared future, not a timer or a task switch each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from typing import Any, Protocol

log = logging.getLogger(__name__)

ErrorHook = Callable[[BaseException], Awaitable[None]]

QUIET = 0.05
MAX_DELAY = 2.0
_RELEASED: ContextVar[bool] = ContextVar("released", default=False)
"""Set in work that has waited for its quiet moment: what it starts is not held again (a
request's dispatch after the ack starts the command's work, which would wait twice)."""

_FROM_REQUEST: ContextVar[bool] = ContextVar("from_request", default=False)
"""Set in work born of a Slack request: what it starts is too, and takes a slot likewise."""

MAX_RUNNING = 32
"""Work born of Slack requests running at once; more waits its turn (a burst of 400 checks
at once would make every HTTP connection pool and the database queue up, and answer later)."""


class QuietWatcher(Protocol):
    """Told when the requests begin after a quiet moment, and when the next one comes."""

    def busy(self) -> None: ...

    def quiet(self) -> None: ...


class BackgroundTasks:
    def __init__(
        self, *, quiet: float = QUIET, max_delay: float = MAX_DELAY, max_running: int = MAX_RUNNING
    ) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.quiet, self.max_delay = quiet, max_delay
        self._slots = asyncio.Semaphore(max_running)
        """Only work spawned while a request is answered takes a slot: resumed jobs and the
        digest never wait behind clicks."""
        self._requests = 0
        self._quiet = True
        """No request in flight, and none answered in the last ``quiet`` seconds."""
        self._last_finished = 0.0
        self._timer = False
        self._release: asyncio.Future[None] | None = None
        """What held work waits for; resolved at a quiet moment or after ``max_delay``."""
        self.watchers: list[QuietWatcher] = []
        self._unstarted: set[asyncio.Task[Any]] = set()
        """Tasks whose work has not begun (held, or waiting for a slot)."""
        self._finish_at_stop: set[asyncio.Task[Any]] = set()
        """Short work a stopping process lets finish (``wind_down``)."""

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    # -- the requests being answered -------------------------------------------------------
    def request_started(self) -> None:
        """A Slack request arrived: hold back new work until it is answered."""
        self._requests += 1
        if self._quiet:
            for watcher in self.watchers:
                watcher.busy()
        self._quiet = False

    def request_finished(self) -> None:
        loop = asyncio.get_running_loop()
        self._requests = max(0, self._requests - 1)
        self._last_finished = loop.time()
        if self._requests == 0 and not self._timer:
            self._timer = True
            loop.call_later(self.quiet, self._open_if_quiet)

    def _open_if_quiet(self) -> None:
        self._timer = False
        if self._requests:
            return  # the request in flight arms the timer again when it is answered
        loop = asyncio.get_running_loop()
        idle = loop.time() - self._last_finished
        if idle < self.quiet:
            self._timer = True
            loop.call_later(self.quiet - idle, self._open_if_quiet)
            return
        self._quiet = True
        for watcher in self.watchers:
            watcher.quiet()
        self._release_held(self._release)

    def _held(self) -> asyncio.Future[None] | None:
        """What new work must wait for, or None when it may start now."""
        if self._quiet:
            return None
        if self._release is None:
            loop = asyncio.get_running_loop()
            self._release = loop.create_future()
            loop.call_later(self.max_delay, self._release_held, self._release)
        return self._release

    def _release_held(self, release: asyncio.Future[None] | None) -> None:
        if release is None:
            return
        if release is self._release:
            self._release = None  # work spawned from now on waits for the next release
        if not release.done():
            release.set_result(None)

    # -- the work ----------------------------------------------------------------------------
    def spawn(
        self,
        work: Coroutine[Any, Any, Any],
        *,
        name: str,
        on_error: ErrorHook | None = None,
        finish_at_stop: bool = False,
    ) -> asyncio.Task[Any]:
        """Run ``work`` in the background; exceptions go to ``on_error`` (lazy work's errors
        are never passed to bolt's error handler, so they are routed here). Work that is
        short and ``finish_at_stop`` (a request acked before it was read) is run to its end
        when the process stops (``wind_down``), held or not."""
        held = None if _RELEASED.get() else self._held()
        slots = self._slots if self._requests or _FROM_REQUEST.get() else None
        task = asyncio.create_task(
            self._guard(work, held, slots, name=name, on_error=on_error), name=name
        )
        self._tasks.add(task)
        self._unstarted.add(task)
        if finish_at_stop:
            self._finish_at_stop.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._tasks.discard(finished)
            self._finish_at_stop.discard(finished)
            if finished in self._unstarted:
                self._unstarted.discard(finished)
                work.close()  # cancelled before it began: it never ran (no warning either)

        task.add_done_callback(done)
        return task

    async def _guard(
        self,
        work: Coroutine[Any, Any, Any],
        held: asyncio.Future[None] | None,
        slots: asyncio.Semaphore | None,
        *,
        name: str,
        on_error: ErrorHook | None,
    ) -> None:
        if held is not None:
            await asyncio.shield(held)  # shared: one waiter cancelled leaves the others be
            _RELEASED.set(True)  # in this task's context, and those of the tasks it starts
        if slots is None:
            await self._run(work, name=name, on_error=on_error)
            return
        _FROM_REQUEST.set(True)  # in this task's context, and those of the tasks it starts
        async with slots:
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
        """Wait for every running task (and the tasks they start) to finish."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._tasks:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            await asyncio.wait(set(self._tasks), timeout=remaining)
            if deadline is not None and loop.time() >= deadline:
                break

    async def wind_down(self, grace: float) -> None:
        """The process is stopping: held work is let go, and the work that must finish
        (``finish_at_stop``) is given ``grace`` seconds to."""
        self._quiet = True
        self._release_held(self._release)
        if self._finish_at_stop:
            await asyncio.wait(set(self._finish_at_stop), timeout=grace)

    async def cancel_all(self) -> None:
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
