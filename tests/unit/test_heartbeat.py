"""The timers of durable jobs on a fake clock (tests/fake_time.py): the heartbeat renews a
running job's claim every third of the lease and stops the job when the claim is lost or
cannot be renewed in time; the sweep runs every ``job_sweep_seconds`` and outlives a
failed sweep. Every wait is counted; nothing here waits on the real clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from bot.bootstrap import Container
from bot.flows.replicas import heartbeat, sweep_forever
from services.storage.jobs import Claim
from tests.fake_time import START, FakeTime

LEASE = timedelta(seconds=30)


@dataclass
class FakeClaims:
    """The job store's claims, as the heartbeat and the sweep use them. ``answers``: what
    each renewal does in turn (True/False, or an exception to raise); ``renewal_takes``:
    seconds of the fake clock each renewal takes (a slow database)."""

    time: FakeTime
    answers: Iterator[bool | Exception] = field(default_factory=lambda: iter(()))
    renewal_takes: float = 0.0
    lease: timedelta = LEASE
    renewed_at: list[datetime] = field(default_factory=list)
    sweeps: int = 0
    failing_sweeps: set[int] = field(default_factory=set)

    async def renew(self, *, job_id: str) -> bool:
        assert job_id == "job-1"
        self.time.advance(self.renewal_takes)
        self.renewed_at.append(self.time.now)
        answer = next(self.answers, True)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def claim_due(self, *, skip: set[str], own: bool = False) -> list[Claim]:
        self.sweeps += 1
        if self.sweeps in self.failing_sweeps:
            raise ConnectionError("database unavailable")
        return []


@dataclass
class Settings:
    job_sweep_seconds: float = 0.5
    job_max_attempts: int = 3


def container(time: FakeTime, jobs: FakeClaims) -> Container:
    deps: Any = type("Deps", (), {})()
    deps.jobs, deps.clock, deps.sleep = jobs, time.clock, time.sleep
    deps.settings, deps.identity, deps.running_jobs = Settings(), None, set()
    return cast(Container, deps)


async def beating(
    time: FakeTime, jobs: FakeClaims
) -> tuple[asyncio.Task[None], asyncio.Future[None], asyncio.Event]:
    """A heartbeat beside a job's work (a future nobody completes)."""
    work: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    lost = asyncio.Event()
    beat = asyncio.create_task(heartbeat(container(time, jobs), "job-1", work, lost))
    return beat, work, lost


def seconds(jobs: FakeClaims) -> list[float]:
    return [(moment - START).total_seconds() for moment in jobs.renewed_at]


async def test_the_heartbeat_renews_the_claim_every_third_of_the_lease() -> None:
    time = FakeTime(stop_after=7)
    jobs = FakeClaims(time)
    beat, work, lost = await beating(time, jobs)
    await time.stopped()
    assert time.sleeps == [10.0] * 7
    assert seconds(jobs) == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]  # past two leases, kept
    assert not (work.cancelled() or lost.is_set() or beat.done())
    beat.cancel()


async def test_a_claim_another_replica_took_stops_the_job_at_the_next_beat() -> None:
    time = FakeTime(stop_after=10)
    jobs = FakeClaims(time, answers=iter([True, True, False]))
    beat, work, lost = await beating(time, jobs)
    await asyncio.wait_for(beat, 30)
    assert seconds(jobs) == [10.0, 20.0, 30.0] and len(time.sleeps) == 3
    assert lost.is_set() and work.cancelled()


async def test_a_renewal_that_fails_once_is_tried_again_and_the_job_goes_on() -> None:
    time = FakeTime(stop_after=5)
    jobs = FakeClaims(time, answers=iter([True, ConnectionError("database restarting")]))
    beat, work, lost = await beating(time, jobs)
    await time.stopped()
    assert seconds(jobs) == [10.0, 20.0, 30.0, 40.0]
    assert not (work.cancelled() or lost.is_set() or beat.done())
    beat.cancel()


async def test_renewals_failing_until_the_claim_nearly_ran_out_stop_the_job() -> None:
    """Renewed at 10 s (until 40 s), then failing, each attempt taking 2 s: the one that
    fails at 36 s is past the margin (a sixth of the lease: 35 s), so the job stops before
    another replica can take it over at 40 s."""
    time = FakeTime(stop_after=10)
    failures = [ConnectionError("database unavailable")] * 5
    jobs = FakeClaims(time, answers=iter([True, *failures]), renewal_takes=2.0)
    beat, work, lost = await beating(time, jobs)
    await asyncio.wait_for(beat, 30)
    assert seconds(jobs) == [12.0, 24.0, 36.0]
    assert lost.is_set() and work.cancelled()


async def test_a_heartbeat_whose_job_ended_meanwhile_leaves_it_alone() -> None:
    time = FakeTime(stop_after=10)
    jobs = FakeClaims(time, answers=iter([False]))  # the job is finished: nothing to renew
    work: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    work.set_result(None)
    lost = asyncio.Event()
    await asyncio.wait_for(heartbeat(container(time, jobs), "job-1", work, lost), 30)
    assert len(jobs.renewed_at) == 1 and not lost.is_set()


async def test_the_sweep_runs_every_interval_and_outlives_a_failed_sweep() -> None:
    time = FakeTime(stop_after=5)
    jobs = FakeClaims(time, failing_sweeps={2})
    sweeper = asyncio.create_task(sweep_forever(container(time, jobs)))
    await time.stopped()
    assert time.sleeps == [0.5] * 5 and jobs.sweeps == 4  # one sweep after each sleep
    assert not sweeper.done()
    sweeper.cancel()
