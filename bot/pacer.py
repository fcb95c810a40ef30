"""Slack allows about one message or update a second per channel: pace them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class ChannelPacer:
    def __init__(self, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._next: dict[str, float] = {}

    async def wait(self, channel: str) -> None:
        """Reserve the channel's next slot and sleep until it comes."""
        now = self._clock()
        slot = max(now, self._next.get(channel, now))
        self._next[channel] = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)

    def try_take(self, channel: str) -> bool:
        """Take the slot if it is free now; otherwise the caller skips (coalescing updates)."""
        now = self._clock()
        if self._next.get(channel, now) > now:
            return False
        self._next[channel] = now + self.interval
        return True
