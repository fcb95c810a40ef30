"""Python's cyclic garbage collector, paused while Slack requests are being answered.

A collection stops the whole process; the bot's server tunes it to run seldom (``tune_gc``),
so each one is long (about 10 ms in bench/ack.py), and every ack in flight waits for it.
While requests arrive the collector is paused, and it runs again at the next quiet moment
(when held work starts too), or after ``max_pause`` seconds of requests without one: a
sustained load collects as usual. Reference counting frees everything that is not a cycle
meanwhile, so a pause costs little memory. The server switches it back on when it stops.
"""

from __future__ import annotations

import asyncio
import gc

MAX_PAUSE = 2.0


class QuietCollector:
    def __init__(self, *, max_pause: float = MAX_PAUSE) -> None:
        self.max_pause = max_pause
        self._paused = False
        self._resume: asyncio.TimerHandle | None = None

    @property
    def paused(self) -> bool:
        return self._paused

    def busy(self) -> None:
        if self._paused or not gc.isenabled():
            return  # already paused, or switched off by someone else: theirs to switch on
        gc.disable()
        self._paused = True
        self._resume = asyncio.get_running_loop().call_later(self.max_pause, self.quiet)

    def quiet(self) -> None:
        if not self._paused:
            return
        self._paused = False
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        gc.enable()
