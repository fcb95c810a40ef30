"""The QuickBooks watch's tables under replicas and crashes (SQLite or PostgreSQL): events
claimed by one replica, failing events set aside, re-checks claimed until their alert went
out and put off by later changes (up to a cap), unfinished alert claims taken over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.storage.db import Database
from services.storage.watch import ALERT_LEASE, WatchStore
from services.watch_events import ChangeEvent

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
GRACE = timedelta(minutes=15)


def event(entity_id: str) -> ChangeEvent:
    return ChangeEvent(
        id=f"1:Invoice:{entity_id}:2026-12-06T12:00:00Z",
        realm_id="1",
        entity="Invoice",
        entity_id=entity_id,
        operation="update",
        occurred_at=T0,
    )


async def test_one_replica_drains_an_event_and_a_dead_ones_events_come_back(db: Database) -> None:
    store = WatchStore(db)
    assert await store.store_events(events=[event("1"), event("2")], now=T0) == 2
    mine = await store.claim_events(now=T0, lease=LEASE)
    assert [e.entity_id for e in mine] == ["1", "2"]
    assert await store.claim_events(now=T0 + timedelta(minutes=1), lease=LEASE) == []  # held
    await store.processed(event_ids=[mine[0].id], now=T0)
    # the holder died before acting on the second: another replica takes it after the lease
    later = await store.claim_events(now=T0 + LEASE, lease=LEASE)
    assert [e.entity_id for e in later] == ["2"]
    await store.release_events(event_ids=[later[0].id])  # a system did not answer
    assert [e.entity_id for e in await store.claim_events(now=T0 + LEASE, lease=LEASE)] == ["2"]


async def test_an_event_that_keeps_failing_is_set_aside(db: Database) -> None:
    store = WatchStore(db)
    await store.store_events(events=[event("1")], now=T0)
    now = T0
    for attempt in (1, 2, 3):
        [claimed] = await store.claim_events(now=now, lease=LEASE)
        aside = await store.failed(
            event_id=claimed.id, now=now, retry_at=now + timedelta(minutes=1), max_attempts=3
        )
        assert aside is (attempt == 3)
        assert await store.claim_events(now=now, lease=LEASE) == []  # not before retry_at
        now += timedelta(minutes=1)
    assert await store.claim_events(now=now + timedelta(hours=1), lease=LEASE) == []
    assert await store.pending_events() == 0


async def test_a_later_change_puts_the_recheck_off_but_never_past_the_cap(db: Database) -> None:
    store = WatchStore(db)

    async def change(at: datetime) -> None:
        await store.mark(
            numbers=["11003"], due_at=at + GRACE, now=at, reason="edited", latest=2 * GRACE
        )

    await change(T0)
    await change(T0 + timedelta(minutes=14))  # a change just before the re-check
    assert await store.take_due(now=T0 + GRACE, lease=LEASE) == []
    [due] = await store.take_due(now=T0 + timedelta(minutes=29), lease=LEASE)
    assert due.changed_at == T0 + timedelta(minutes=14)  # what the alert's "later" counts from
    assert await store.done(due=due)
    # changes every 10 minutes for an hour: re-checked 30 minutes after the first
    for minute in range(0, 60, 10):
        await change(T0 + timedelta(hours=1, minutes=minute))
    assert (await store.marked())["11003"] == T0 + timedelta(hours=1, minutes=30)


async def test_a_recheck_lost_in_a_crash_comes_round_again(db: Database) -> None:
    store = WatchStore(db)
    await store.mark(numbers=["11003"], due_at=T0, now=T0, reason="edited")
    [taken] = await store.take_due(now=T0, lease=LEASE)
    assert await store.take_due(now=T0 + timedelta(minutes=1), lease=LEASE) == []
    # the replica died before its alert went out: the row is still there
    [again] = await store.take_due(now=T0 + LEASE, lease=LEASE)
    assert again.number == "11003"
    assert not await store.done(due=taken)  # the dead one's claim no longer holds it
    assert await store.done(due=again)
    assert await store.marked() == {}


async def test_a_change_during_the_recheck_keeps_the_row_for_another(db: Database) -> None:
    store = WatchStore(db)
    await store.mark(numbers=["11003"], due_at=T0, now=T0, reason="edited")
    [taken] = await store.take_due(now=T0, lease=LEASE)
    await store.mark(numbers=["11003"], due_at=T0 + GRACE, now=T0, reason="edited")
    assert not await store.done(due=taken)
    assert (await store.marked())["11003"] == T0 + GRACE


async def test_an_unfinished_alert_claim_is_taken_over_after_its_lease(db: Database) -> None:
    store = WatchStore(db)
    assert await store.claim_alert(key="invoice:11003", channel="C1", now=T0)
    # the poster died between its claim and its post: message_ts stays NULL
    assert not await store.claim_alert(key="invoice:11003", channel="C1", now=T0 + LEASE / 5)
    assert await store.claim_alert(key="invoice:11003", channel="C1", now=T0 + ALERT_LEASE)
    await store.alert_posted(key="invoice:11003", message_ts="1.0", now=T0 + ALERT_LEASE)
    assert not await store.claim_alert(key="invoice:11003", channel="C1", now=T0 + 9 * LEASE)
    assert await store.alert(key="invoice:11003") == ("C1", "1.0")
