"""The QuickBooks watch's work after the answer (bot.flows.watch) over in-memory fakes, a
SQLite database and an injected clock: one bad event does not stall the others, a system
not answering leaves the events waiting, a cancelled post gives its claim back, a re-check
lost in a crash is redone, the alert keeps money still to account for in view, and a CDC
answer QuickBooks cut short is said in the channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from bot.bootstrap import Container, bootstrap
from bot.flows.watch import MAX_ATTEMPTS, RECHECK_LEASE, RETRY_AFTER, Watch, watch_of
from bot.pacer import ChannelPacer
from bot.settings import Settings
from services.causes import AtRisk, RiskKind
from services.errors import TransientError, ValidationFault
from services.storage.db import Database
from services.watch import CdcTruncated, OpenInvoice, RecordedPayment
from services.watch_events import ChangeEvent
from tests.diagnosis_support import NOW, acct, mirror
from tests.unit.fakes import FakeAccounting, FakePortal, MemoryFollowUps, World

CHANNEL = "C0ALERTS1"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeSlack:
    posted: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    fail: BaseException | None = None

    async def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        if self.fail is not None:
            raise self.fail
        self.posted.append(kwargs)
        return {"ok": True, "ts": f"{len(self.posted)}.000"}

    async def chat_update(self, **kwargs: Any) -> dict[str, Any]:
        self.updated.append(kwargs)
        return {"ok": True}


@dataclass
class FakeFeed:
    """Invoice ids to numbers; ``refuse`` ids answer a ValidationFault, ``down`` fails all."""

    numbers: dict[str, str]
    refuse: set[str] = field(default_factory=set)
    down: bool = False
    cdc: list[ChangeEvent] = field(default_factory=list)
    cut: bool = False

    async def invoice_numbers(self, ids: Sequence[str]) -> dict[str, str]:
        if self.down:
            raise TransientError("QuickBooks did not answer", system="qbo")
        if self.refuse & set(ids):
            raise ValidationFault("invalid DocNumber", system="qbo", status=400)
        return {i: self.numbers[i] for i in ids if i in self.numbers}

    async def payments(self, ids: Sequence[str]) -> list[RecordedPayment]:
        return []

    async def credit_memo_customers(self, ids: Sequence[str]) -> list[str]:
        return []

    async def open_invoices(self, customer_id: str) -> list[OpenInvoice]:
        return []

    async def balances(self, numbers: Sequence[str]) -> dict[str, Decimal]:
        return {}

    async def changes_since(self, since: datetime) -> list[ChangeEvent]:
        if self.cut:
            raise CdcTruncated(self.cdc, entities=["Invoice"])
        return self.cdc


def change(entity_id: str, second: int = 0) -> ChangeEvent:
    when = NOW.replace(second=second)
    return ChangeEvent(
        id=f"1:Invoice:{entity_id}:{when:%Y-%m-%dT%H:%M:%SZ}",
        realm_id="1",
        entity="Invoice",
        entity_id=entity_id,
        operation="update",
        occurred_at=when,
    )


@dataclass
class Setup:
    container: Container
    watch: Watch
    feed: FakeFeed
    slack: FakeSlack
    clock: Clock
    world: World


@pytest.fixture
async def setup(db: Database, database_url: str) -> AsyncIterator[Setup]:
    settings = Settings(
        _env_file=None,
        slack_bot_token=SecretStr("xoxb-test"),
        slack_signing_secret=SecretStr("test-secret"),
        database_url=database_url,
        alert_channel=CHANNEL,
        portal_sync_grace_minutes=15,
    )
    world = World(acct=acct("40.00"), portal=mirror("40.00"))
    slack, clock = FakeSlack(), Clock()
    container = await bootstrap(
        settings,
        db=db,
        accounting=FakeAccounting(world),
        portal=FakePortal(world),
        slack=cast(AsyncWebClient, slack),
        clock=clock,
    )
    container.pacer = ChannelPacer(interval=0)
    container.followups = MemoryFollowUps()
    feed = FakeFeed(numbers={"1006": "11265", "2": "11002", "3": "11003"})
    yield Setup(container, watch_of(container, feed), feed, slack, clock, world)


def set_aside(setup: Setup) -> float:
    value = setup.container.metrics.registry.get_sample_value(
        "invoicebot_qbo_webhook_events_total", {"outcome": "set_aside"}
    )
    return value or 0.0


async def test_one_refused_event_does_not_stall_the_others(setup: Setup) -> None:
    store = setup.watch.store
    setup.feed.refuse = {"bad"}
    await store.store_events(events=[change("2"), change("bad"), change("3")], now=NOW)
    assert await setup.watch.drain() == 2  # the good ones, one by one
    assert sorted(await store.marked()) == ["11002", "11003"]
    for _ in range(MAX_ATTEMPTS - 1):
        setup.clock.now += RETRY_AFTER
        assert await setup.watch.drain() == 0
    assert set_aside(setup) == 1 and await store.pending_events() == 0
    await store.store_events(events=[change("1006", second=30)], now=setup.clock.now)
    assert await setup.watch.drain() == 1  # later webhooks are acted on
    assert "11265" in await store.marked()


async def test_a_system_not_answering_leaves_the_events_waiting(setup: Setup) -> None:
    store = setup.watch.store
    setup.feed.down = True
    await store.store_events(events=[change("2"), change("3")], now=NOW)
    with pytest.raises(TransientError):
        await setup.watch.drain()
    assert await store.pending_events() == 2 and set_aside(setup) == 0
    setup.feed.down = False
    assert await setup.watch.drain() == 2  # released at once, not after the lease


async def test_a_cancelled_post_gives_its_claim_back(setup: Setup) -> None:
    setup.world.portal = mirror("45.00")  # the portal differs: an alert is due
    await setup.watch.store.mark(numbers=["11265"], due_at=NOW, now=NOW, reason="edited")
    setup.slack.fail = asyncio.CancelledError()  # SIGTERM while posting
    with pytest.raises(asyncio.CancelledError):
        await setup.watch.run_due()
    assert await setup.watch.store.alert(key="invoice:11265") is None
    setup.slack.fail = None
    setup.clock.now += RECHECK_LEASE  # the re-check itself comes round again
    assert await setup.watch.run_due() == 1
    assert len(setup.slack.posted) == 1
    assert await setup.watch.store.marked() == {}  # done once its alert went out


async def test_a_recheck_taken_by_a_dead_replica_is_redone(setup: Setup) -> None:
    setup.world.portal = mirror("45.00")
    store = setup.watch.store
    await store.mark(numbers=["11265"], due_at=NOW, now=NOW, reason="edited")
    await store.take_due(now=NOW, lease=RECHECK_LEASE)  # taken, then the replica died
    assert await setup.watch.run_due() == 0
    setup.clock.now += RECHECK_LEASE
    assert await setup.watch.run_due() == 1
    assert "11265" in setup.slack.posted[0]["text"]


async def test_the_alert_keeps_money_still_to_account_for_in_view(setup: Setup) -> None:
    setup.world.portal = mirror("45.00")
    store = setup.watch.store
    await store.mark(numbers=["11265"], due_at=NOW, now=NOW, reason="edited")
    assert await setup.watch.run_due() == 1
    # "Resync anyway" took $15.00 nothing explains out of view; the balances now match
    risk = AtRisk(
        kind=RiskKind.UNEXPLAINED, reference="unexplained", amount=Decimal("15.00"), what="x"
    )
    await setup.container.followups.open(
        invoice="11265", risk=risk, acknowledged_by="U1", job_id=None
    )
    setup.world.portal = mirror("40.00")
    await store.mark(numbers=["11265"], due_at=NOW, now=NOW, reason="edited")
    assert await setup.watch.run_due() == 1
    [update] = setup.slack.updated
    assert "balances match" in update["text"] and "($15.00)" in update["text"]
    assert "agree again" not in update["text"]


async def test_a_cdc_answer_cut_short_is_said_and_what_it_listed_is_kept(setup: Setup) -> None:
    watch = setup.watch
    assert await watch.catch_up("start") == 0  # sets the point
    setup.feed.cdc, setup.feed.cut = [change("2"), change("3")], True
    setup.clock.now += timedelta(hours=1)
    assert await watch.catch_up("schedule") == 2
    [notice] = setup.slack.posted
    assert "than it lists at once" in notice["text"] and "/invoice digest" in notice["text"]
    assert "<!date^" in notice["text"]  # the reader's time zone
