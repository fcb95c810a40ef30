"""The guard refuses a full resync from before the integration was connected to the portal,
whichever entry point asked: the person's question, and the job at the moment of the write
(a job made before the rule, or resumed, sends nothing)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from commands.blocks import usage_message
from services.errors import UsageError
from services.guard import WriteGuard
from services.jobs import Job, JobKind, JobState, Outcome
from services.resync import PollPolicy, ResyncRunner
from tests.diagnosis_support import NOW, acct, mirror
from tests.unit.fakes import (
    FakeAccounting,
    FakePortal,
    MemoryFollowUps,
    MemoryJobs,
    SilentReporter,
    World,
)

CONNECTED = NOW - timedelta(days=100)


def world() -> World:
    return World(acct=acct("50.00"), portal=mirror("40.00"), connected_at=CONNECTED)


def guard(w: World) -> WriteGuard:
    return WriteGuard(accounting=FakeAccounting(w), portal=FakePortal(w), clock=lambda: NOW)


async def test_the_guard_refuses_a_date_before_the_connection_with_the_reason() -> None:
    with pytest.raises(UsageError) as refused:
        await guard(world()).assess_full("int-1", (CONNECTED - timedelta(days=1)).date())
    answer = refused.value.message
    assert f"Pick {CONNECTED:%Y-%m-%d} or later" in answer
    assert "was connected to the portal on" in answer
    assert "<" not in str(usage_message(answer).blocks[0].to_dict())  # no portal text in it
    # The connect day itself is allowed.
    assessment = await guard(world()).assess_full("int-1", CONNECTED.date())
    assert assessment.since == CONNECTED.date()


async def test_a_job_from_before_the_connection_sends_nothing() -> None:
    w = world()
    followups, jobs = MemoryFollowUps(), MemoryJobs()
    runner = ResyncRunner(
        accounting=FakeAccounting(w),
        portal=FakePortal(w),
        jobs=jobs,
        guard=guard(w),
        followups=followups,
        poll=PollPolicy(interval=0, timeout=5),
        clock=lambda: NOW,
    )
    job = jobs.add(
        Job(
            id="job-early",
            kind=JobKind.FULL,
            record_type="invoice",
            target="int-1",
            integration_id="int-1",
            sync_from=(CONNECTED - timedelta(days=30)).date(),
            requested_by="U0ALICE001",
            channel="C0FINANCE1",
            thread_ts="1.1",
            state=JobState.QUEUED,
            created_at=NOW,
            updated_at=NOW,
        )
    )
    done = await runner.run(job, SilentReporter())
    assert done.outcome is Outcome.REFUSED
    assert w.writes == []
    assert "was connected to the portal on" in (done.detail or "")
