"""Slack allows about one message a second per channel, with short bursts of more than one:
pace each channel's messages and updates to that (a burst of ``burst``, then one an
``interval``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class ChannelPacer:
    def __init__(
        self,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        burst: int = 3,
    ) -> None:
        self.interval = interval
        self.burst = max(1, burst)
        self._clock = clock
        self._next: dict[str, float] = {}
        """Per channel, when the bucket will be full again (one slot an interval)."""

    def _start(self, channel: str, now: float) -> tuple[float, float]:
        """(when the next slot may go, the bucket's new full time once it is taken)."""
        full = max(now, self._next.get(channel, now))
        return full - (self.burst - 1) * self.interval, full + self.interval

    async def wait(self, channel: str) -> None:
        """Reserve the channel's next slot and sleep until it comes."""
        now = self._clock()
        start, self._next[channel] = self._start(channel, now)
        if start > now:
            await asyncio.sleep(start - now)

    def try_take(self, channel: str) -> bool:
        """Take a slot if one is free now; otherwise the caller skips (coalescing updates)."""
        now = self._clock()
        start, full = self._start(channel, now)
        if start > now:
            return False
        self._next[channel] = full
        return True
