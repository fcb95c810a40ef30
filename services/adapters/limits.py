"""Client-side rate limiting: at most N requests in flight and M started per rolling window."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class RateLimiter:
    """A semaphore for concurrency plus a sliding-window log of finished requests.

    ``async with limiter.slot(): ...`` waits (never sleeps a fixed time) until both a
    concurrency slot is free and fewer than ``max_per_window`` requests are in flight or
    finished in the last ``window`` seconds. A request is logged when it ends, not when it
    starts: the server counts it on arrival, somewhere in between, so a window kept from
    the ends is never fuller on the server's side than on ours. Share one limiter among
    every client of the same account.
    """

    def __init__(
        self,
        *,
        max_concurrency: int,
        max_per_window: int,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_concurrency < 1 or max_per_window < 1 or window <= 0:
            raise ValueError("limits must be positive")
        self.max_concurrency = max_concurrency
        self.max_per_window = max_per_window
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._semaphore = asyncio.Semaphore(min(max_concurrency, max_per_window))
        self._window_lock = asyncio.Lock()
        self._ends: deque[float] = deque()
        self.in_flight = 0
        self.peak_in_flight = 0
        """The most requests ever in flight at once (tests and benchmarks read it)."""

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._semaphore:
            await self._start()
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1
                self._ends.append(self._clock())

    async def _start(self) -> None:
        # One waiter at a time looks at the window, so waiters are served in order.
        async with self._window_lock:
            while True:
                now = self._clock()
                while self._ends and self._ends[0] <= now - self.window:
                    self._ends.popleft()
                if self.in_flight + len(self._ends) < self.max_per_window:
                    self.in_flight += 1
                    return
                # Full: fewer in flight than the semaphore allows, so an end is logged.
                await self._sleep(self._ends[0] + self.window - now)
