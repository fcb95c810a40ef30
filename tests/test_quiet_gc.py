"""The cyclic collector is paused while requests are answered, and runs again when quiet."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from bot.quiet_gc import QuietCollector
from bot.tasks import BackgroundTasks


@pytest.fixture(autouse=True)
def collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def watched(
    *, quiet: float = 0.1, max_pause: float = 5.0
) -> tuple[BackgroundTasks, QuietCollector]:
    tasks = BackgroundTasks(quiet=quiet, max_delay=5)
    collector = QuietCollector(max_pause=max_pause)
    tasks.watchers.append(collector)
    return tasks, collector


async def test_paused_during_a_burst_and_back_at_the_quiet_moment() -> None:
    tasks, collector = watched()
    tasks.request_started()
    assert not gc.isenabled() and collector.paused
    tasks.request_finished()
    tasks.request_started()  # the next request of the burst, before the quiet window ends
    tasks.request_finished()
    await asyncio.sleep(0.01)
    assert not gc.isenabled()
    await asyncio.sleep(0.4)
    assert gc.isenabled() and not collector.paused


async def test_back_after_the_longest_pause_under_constant_traffic() -> None:
    tasks, _ = watched(max_pause=0.05)
    tasks.request_started()  # never finished
    assert not gc.isenabled()
    await asyncio.sleep(0.2)
    assert gc.isenabled()
    tasks.request_finished()
    await asyncio.sleep(0.4)  # the quiet moment after a pause that already ended
    assert gc.isenabled()


async def test_a_collector_switched_off_elsewhere_stays_off() -> None:
    tasks, collector = watched()
    gc.disable()
    tasks.request_started()
    tasks.request_finished()
    await asyncio.sleep(0.4)
    assert not gc.isenabled() and not collector.paused


async def test_held_work_starts_with_the_collector_running() -> None:
    tasks, _ = watched()
    seen: list[bool] = []

    async def work() -> None:
        seen.append(gc.isenabled())

    tasks.request_started()
    tasks.spawn(work(), name="w")
    tasks.request_finished()
    await tasks.drain(timeout=1)
    assert seen == [True]


async def test_switched_back_on_when_the_server_stops_in_a_burst() -> None:
    tasks, collector = watched(max_pause=0.05)
    tasks.request_started()  # the server stops before this request is answered
    assert not gc.isenabled()
    collector.quiet()  # what `invoicebot run` does on its way out
    assert gc.isenabled() and not collector.paused
    await asyncio.sleep(0.1)  # the longest-pause timer was cancelled: nothing flips it back
    assert gc.isenabled()
