"""A clock that moves only when the code under test sleeps, for the timers of leases, claims
and sweeps: tests count the sleeps (and what happened between them) instead of waiting
real seconds.

    time = FakeTime(stop_after=4)    # the fourth sleep parks its task
    task = asyncio.create_task(code(clock=time.clock, sleep=time.sleep))
    await time.stopped()             # three sleeps done, the fourth one begun
    assert time.sleeps == [10.0, 10.0, 10.0, 10.0]
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

START = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


class FakeTime:
    def __init__(self, start: datetime = START, *, stop_after: int | None = None) -> None:
        self.now = start
        self.sleeps: list[float] = []
        """Every sleep begun, in seconds (the one parked at ``stop_after`` included)."""
        self.stop_after = stop_after
        self._parked = asyncio.Event()

    def clock(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        """Count the sleep; the ``stop_after``-th waits until cancelled, any other moves the
        clock on by ``seconds`` at once and lets the other tasks run."""
        self.sleeps.append(seconds)
        if self.stop_after is not None and len(self.sleeps) >= self.stop_after:
            self._parked.set()
            await asyncio.Event().wait()
        self.advance(seconds)
        await asyncio.sleep(0)

    async def stopped(self, timeout: float = 30.0) -> None:
        """Wait until a task sleeps for the ``stop_after``-th time (``timeout``: a real-time
        bound in case it never does, generous for a loaded machine)."""
        await asyncio.wait_for(self._parked.wait(), timeout)
