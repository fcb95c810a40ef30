"""Digest runs in the database: one running at a time, one scheduled run a day, outcomes."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.digest import (
    DigestAlreadyDone,
    DigestAlreadyRunning,
    DigestResult,
    Discrepancy,
    RunState,
    Trigger,
)
from services.storage.db import Database
from services.storage.digests import DigestRuns

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
DAY = date(2026, 11, 30)


def a_result() -> DigestResult:
    found = Discrepancy("11260", "Best Tackle", "USD", Decimal("50.00"), Decimal("40.00"), NOW, NOW)
    return DigestResult(
        started_at=NOW,
        duration=timedelta(seconds=3.5),
        open_invoices=305,
        compared=300,
        skipped_recent=5,
        recent_window=timedelta(minutes=10),
        discrepancies=(found,),
    )


async def test_a_running_digest_is_not_started_twice(db: Database) -> None:
    runs = DigestRuns(db)
    first = await runs.start(trigger=Trigger.COMMAND, channel="C1", requested_by="U1", now=NOW)
    with pytest.raises(DigestAlreadyRunning) as caught:
        await runs.start(trigger=Trigger.SCHEDULE, channel="C2", day=DAY, now=NOW)
    assert caught.value.run.id == first.id and caught.value.run.requested_by == "U1"
    done = await runs.finish(run_id=first.id, result=a_result(), message_ts="1.2")
    assert done.state is RunState.DONE and done.open_invoices == 305
    assert (done.discrepancies, done.skipped_recent) == (1, 5)
    assert done.amount_at_stake == Decimal("10.00") and done.duration_seconds == 3.5
    assert done.message_ts == "1.2"
    second = await runs.start(trigger=Trigger.COMMAND, channel="C1", now=NOW)
    assert second.state is RunState.RUNNING


async def test_racing_starts_let_exactly_one_through(db: Database) -> None:
    outcomes = await asyncio.gather(
        *(DigestRuns(db).start(trigger=Trigger.COMMAND, channel="C1") for _ in range(6)),
        return_exceptions=True,
    )
    started = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(started) == 1
    assert all(isinstance(o, DigestAlreadyRunning) for o in outcomes if o not in started)


async def test_one_scheduled_digest_a_day_but_a_failed_one_may_run_again(db: Database) -> None:
    runs = DigestRuns(db)
    first = await runs.start(trigger=Trigger.SCHEDULE, channel="C1", day=DAY, now=NOW)
    failed = await runs.finish(run_id=first.id, error="QuickBooks Online: no answer")
    assert failed.state is RunState.FAILED and failed.detail == "QuickBooks Online: no answer"
    later = NOW + timedelta(minutes=5)
    again = await runs.start(trigger=Trigger.SCHEDULE, channel="C1", day=DAY, now=later)
    await runs.finish(run_id=again.id, result=a_result())
    with pytest.raises(DigestAlreadyDone):
        await runs.start(trigger=Trigger.SCHEDULE, channel="C1", day=DAY, now=later)
    tomorrow = await runs.start(
        trigger=Trigger.SCHEDULE,
        channel="C1",
        day=DAY + timedelta(days=1),
        now=NOW + timedelta(days=1),
    )
    assert tomorrow.day == DAY + timedelta(days=1)
    assert [r.id for r in await runs.recent(limit=2)] == [tomorrow.id, again.id]


async def test_a_run_abandoned_by_a_crash_does_not_block_forever(db: Database) -> None:
    runs = DigestRuns(db)
    stuck = await runs.start(trigger=Trigger.COMMAND, channel="C1", now=NOW - timedelta(hours=2))
    fresh = await runs.start(trigger=Trigger.COMMAND, channel="C1", now=NOW)
    abandoned = await runs.get(run_id=stuck.id)
    assert abandoned is not None and abandoned.state is RunState.FAILED
    assert abandoned.detail == "abandoned" and fresh.state is RunState.RUNNING
