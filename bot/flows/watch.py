"""The QuickBooks watch: webhook deliveries stored before they are answered, then the work
after the answer: what each change touches, collisions announced at once, re-checks once
the portal has had time to sync (PORTAL_SYNC_GRACE_MINUTES), one alert per invoice in
ALERT_CHANNEL updated in place, and Change Data Capture catch-ups (at start, on a schedule
and after a gap in deliveries). Every time comes from the container's clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from slack_sdk.errors import SlackApiError

from bot.bootstrap import Container
from bot.flows.check import check_with_followups
from bot.settings import Settings
from commands.blocks import Message
from commands.watch_blocks import (
    cdc_cut_short,
    cdc_too_old,
    change_alert,
    collision_message,
    resolved_alert,
)
from services.comparison import Comparison
from services.errors import UpstreamError
from services.followups import FollowUp
from services.reconcile import choose_sync_date
from services.storage.watch import DueRecheck, WatchStore
from services.watch import (
    CDC_DAYS,
    SYSTEM_DOWN,
    CdcTruncated,
    ChangeFeed,
    Collision,
    in_quiet_hours,
    touched_by,
)
from services.watch_events import ChangeEvent, MalformedDelivery, parse_delivery, signature_ok

log = logging.getLogger(__name__)
CDC_MARK = "cdc"
DELIVERY_MARK = "delivery"
CDC_OVERLAP = timedelta(minutes=1)
"""Each catch-up reaches back this much before the last one (clocks differ)."""
EVENT_LEASE = timedelta(minutes=5)
"""A replica acting on claimed events has this long before another may take them."""
RETRY_AFTER = timedelta(minutes=1)
MAX_ATTEMPTS = 3
"""An event that fails this many times (other than by a system not answering) is set
aside: logged, counted (outcome ``set_aside``), never blocking the events after it."""
RECHECK_LEASE = timedelta(minutes=10)
RECHECK_LATEST = 2
"""Changes that keep coming put a re-check off, up to this many graces after the first."""


@dataclass
class Watch:
    deps: Container
    feed: ChangeFeed | None
    store: WatchStore
    events: Counter
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    background: set[asyncio.Future[None]] = field(default_factory=set)

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.deps.settings.portal_sync_grace_minutes)

    @property
    def tick(self) -> float:
        return min(30.0, max(0.2, self.grace.total_seconds() / 5))

    # -- the webhook ----------------------------------------------------------------------
    async def receive(self, body: bytes, signature: str | None) -> tuple[int, dict[str, object]]:
        """The answer to one delivery: 401 (bad signature), 400 (malformed), 200 once every
        event of ours is stored (a repeated event is stored once)."""
        settings = self.deps.settings
        verifier = settings.qbo_webhook_verifier
        if verifier is None or not signature_ok(body, signature, verifier.get_secret_value()):
            self.events.labels("refused_signature").inc()
            return 401, {"error": "invalid intuit-signature"}
        try:
            delivery = parse_delivery(body, realm_id=settings.qbo_realm_id)
        except MalformedDelivery as exc:
            self.events.labels("malformed").inc()
            log.warning("QuickBooks webhook refused: %s", exc)
            return 400, {"error": "malformed delivery"}
        now = self.deps.clock()
        new = await self.store.store_events(events=delivery.ours, now=now)
        self.events.labels("stored").inc(new)
        self.events.labels("duplicate").inc(len(delivery.ours) - new)
        self.events.labels("other_realm").inc(delivery.other_realms)
        last = await self.store.get_mark(name=DELIVERY_MARK)
        await self.store.set_mark(name=DELIVERY_MARK, at=now)
        cdc_every = timedelta(minutes=settings.qbo_cdc_minutes)
        if last is not None and cdc_every and now - last > cdc_every:
            self._later(self.catch_up("a gap in webhook deliveries"))
        self.wake.set()
        return 200, {"stored": new, "ignored": delivery.other_realms}

    def _later(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(self._step(work))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    # -- after the answer ---------------------------------------------------------------
    async def drain(self) -> int:
        """Act on the stored events not acted on yet (claimed, so one replica acts on each);
        how many. A system not answering leaves them for the next round; an event that
        fails otherwise is tried alone, again later, and set aside after MAX_ATTEMPTS."""
        if self.feed is None:
            return 0
        done = 0
        async with self.lock:
            while events := await self.store.claim_events(
                now=self.deps.clock(), lease=EVENT_LEASE, limit=200
            ):
                try:
                    done += await self._act(events)
                except SYSTEM_DOWN:
                    await self.store.release_events(event_ids=[e.id for e in events])
                    raise
                except Exception:  # never a queue stuck behind one event: each alone
                    log.warning("watch: %d events failed together; one by one", len(events))
                    for n, event in enumerate(events):
                        try:
                            done += await self._act([event])
                        except SYSTEM_DOWN:
                            await self.store.release_events(event_ids=[e.id for e in events[n:]])
                            raise
                        except Exception:
                            await self._failed(event)
        return done

    async def _act(self, events: list[ChangeEvent]) -> int:
        assert self.feed is not None
        watched = [e for e in events if e.watched and e.operation != "delete"]
        touched = await touched_by(watched, feed=self.feed, portal=self.deps.portal)
        for collision in touched.collisions:
            await self.announce(collision)
        now = self.deps.clock()
        for number, reason in touched.invoices.items():
            await self.store.mark(
                numbers=[number],
                due_at=now + self.grace,
                now=now,
                reason=reason,
                latest=RECHECK_LATEST * self.grace,
            )
        await self.store.processed(event_ids=[e.id for e in events], now=now)
        return len(events)

    async def _failed(self, event: ChangeEvent) -> None:
        now = self.deps.clock()
        aside = await self.store.failed(
            event_id=event.id, now=now, retry_at=now + RETRY_AFTER, max_attempts=MAX_ATTEMPTS
        )
        if aside:
            self.events.labels("set_aside").inc()
            log.error(
                "watch: %s %s could not be acted on %d times; set aside",
                event.entity,
                event.entity_id,
                MAX_ATTEMPTS,
                exc_info=True,
            )
        else:
            log.warning("watch: %s %s failed; again later", event.entity, event.entity_id)

    async def announce(self, collision: Collision) -> bool:
        """Post a collision at once (quiet hours or not), once across replicas."""
        channel = self.deps.settings.payment_alerts_channel
        key = f"collision:{collision.qbo.id}:{collision.portal.id}"
        if not channel or not await self.store.claim_alert(
            key=key, channel=channel, now=self.deps.clock()
        ):
            return False
        message = collision_message(collision, now=self.deps.clock())
        await self._post_claimed(key, channel, message)
        log.info("collision on %s announced", collision.invoice_number)
        return True

    async def _post_claimed(self, key: str, channel: str, message: Message) -> None:
        """Post under a claimed key; the claim is given back however the post fails (a
        cancellation too), so the alert is not silenced."""
        try:
            ts = await self._post(channel, message)
        except BaseException:
            await asyncio.shield(self.store.release_alert(key=key))
            raise
        await self.store.alert_posted(key=key, message_ts=ts, now=self.deps.clock())

    async def run_due(self) -> int:
        """Re-check the invoices whose grace has passed; how many alerts were posted or
        updated. A re-check stays claimed until its alert has gone out: one lost in a crash
        comes round again once its claim lapses."""
        changed = 0
        for due in await self.store.take_due(now=self.deps.clock(), lease=RECHECK_LEASE):
            try:
                comparison, followups = await check_with_followups(
                    self.deps, due.number, purpose="watch"
                )
            except UpstreamError as exc:  # a system did not answer: again after the grace
                log.warning("watch: could not check invoice %s: %s", due.number, exc)
                await self._again(due)
                continue
            try:
                changed += await self._alert(comparison, followups, due)
            except Exception:  # Slack did not take it: the re-check comes round again
                log.warning("watch: could not alert about %s", due.number, exc_info=True)
                await self._again(due)
                continue
            await self.store.done(due=due)
        return changed

    async def _again(self, due: DueRecheck) -> None:
        now = self.deps.clock()
        await self.store.again(number=due.number, due_at=now + self.grace, now=now)

    async def _alert(
        self, comparison: Comparison, followups: list[FollowUp], due: DueRecheck
    ) -> int:
        channel = self.deps.settings.payment_alerts_channel
        if not channel:
            return 0
        key = f"invoice:{comparison.number}"
        existing = await self.store.alert(key=key)
        now = self.deps.clock()
        if not comparison.out_of_sync:
            if existing is None or existing[1] is None:
                return 0
            message = resolved_alert(comparison.number, now=now, followups=followups)
            await self._update(existing[0], existing[1], message)
            return 1
        diagnosis = comparison.diagnosis
        urgent = diagnosis is not None and diagnosis.resync_hides_money
        if existing is None and not urgent and self.quiet(now):
            log.info("watch: %s differs; held for the digest (quiet hours)", comparison.number)
            return 0
        acct = comparison.accounting
        message = change_alert(
            comparison,
            reason=due.reason,
            now=now,
            full_resync_since=choose_sync_date(
                now=now, last_modified=acct.last_updated if acct else None
            ),
            grace=self.grace,
            waited=now - due.changed_at,
            followups=followups,
        )
        if existing is not None and existing[1] is not None:
            await self._update(existing[0], existing[1], message)
            return 1
        if not await self.store.claim_alert(key=key, channel=channel, now=now):
            return 0
        await self._post_claimed(key, channel, message)
        return 1

    def quiet(self, now: datetime) -> bool:
        settings = self.deps.settings
        return in_quiet_hours(now, settings.alert_quiet_hours, settings.digest_timezone)

    async def _post(self, channel: str, message: Message) -> str:
        await self.deps.pacer.wait(channel)
        response = await self.deps.slack.chat_postMessage(channel=channel, **message.as_kwargs())
        return str(response["ts"])

    async def _update(self, channel: str, ts: str, message: Message) -> None:
        await self.deps.pacer.wait(channel)
        try:
            await self.deps.slack.chat_update(channel=channel, ts=ts, **message.as_kwargs())
        except SlackApiError as exc:
            log.warning("watch: could not update the alert %s (%s)", ts, exc.response.get("error"))

    # -- Change Data Capture ------------------------------------------------------------
    async def catch_up(self, why: str) -> int:
        """Read what changed since the last point seen (CDC) and store it as events; how many
        were new. The first run only sets the point. Beyond CDC's 30 days: said in the
        channel, and the digest catches up."""
        if self.feed is None:
            return 0
        now = self.deps.clock()
        since = await self.store.get_mark(name=CDC_MARK)
        if since is None:
            await self.store.set_mark(name=CDC_MARK, at=now)
            return 0
        if now - since > timedelta(days=CDC_DAYS):
            await self._too_old(since)
            await self.store.set_mark(name=CDC_MARK, at=now)
            return 0
        cut: CdcTruncated | None = None
        try:
            events = await self.feed.changes_since(since - CDC_OVERLAP)
        except CdcTruncated as exc:  # more than QuickBooks lists: keep what it did list
            cut, events = exc, exc.events
        new = await self.store.store_events(events=events, now=now)
        await self.store.set_mark(name=CDC_MARK, at=now)
        log.info("watch: CDC catch-up (%s): %d changes, %d new", why, len(events), new)
        if cut is not None:
            await self._too_many(since, cut)
        self.wake.set()
        return new

    async def _too_many(self, since: datetime, cut: CdcTruncated) -> None:
        log.warning("watch: CDC since %s cut short (%s)", since, cut)
        await self._notice(cdc_cut_short(since, cut.entities))

    async def _too_old(self, since: datetime) -> None:
        log.warning("watch: last change seen %s is beyond CDC's %d days", since, CDC_DAYS)
        await self._notice(cdc_too_old(since, days=CDC_DAYS))

    async def _notice(self, message: Message) -> None:
        if channel := self.deps.settings.payment_alerts_channel:
            await self._post(channel, message)

    # -- the loop -----------------------------------------------------------------------
    async def run_forever(self) -> None:
        cdc_every = self.deps.settings.qbo_cdc_minutes * 60
        with contextlib.suppress(Exception):
            await self._step(self.catch_up("start"))
        next_cdc = time.monotonic() + cdc_every
        while True:
            await self._step(self.drain())
            await self._step(self.run_due())
            if cdc_every > 0 and time.monotonic() >= next_cdc:
                await self._step(self.catch_up("schedule"))
                next_cdc = time.monotonic() + cdc_every
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.tick)
            self.wake.clear()

    async def _step(self, work: Awaitable[object]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except UpstreamError as exc:
            log.warning("watch: %s; trying again later", exc)
        except Exception:
            log.warning("watch: a round failed; trying again later", exc_info=True)


def watch_of(deps: Container, feed: ChangeFeed | None = None) -> Watch:
    """The container's watch (made the first time; ``feed`` defaults to QuickBooks')."""
    found = deps.watch
    if not isinstance(found, Watch):
        events = Counter(
            "invoicebot_qbo_webhook_events",
            "QuickBooks webhook events by outcome: stored, duplicate, other_realm (another "
            "company's, ignored), set_aside (failed too often); deliveries refused_signature, "
            "malformed or too_large",
            ["outcome"],
            registry=deps.metrics.registry,
        )
        found = Watch(
            deps=deps, feed=feed or default_feed(deps), store=WatchStore(deps.db), events=events
        )
        deps.watch = found
    elif feed is not None:
        found.feed = feed
    return found


def default_feed(deps: Container) -> ChangeFeed | None:
    from services.adapters.qbo import QboClient
    from services.adapters.qbo.changes import QboChanges

    if isinstance(deps.accounting, QboClient):
        return QboChanges(deps.accounting, realm_id=deps.settings.qbo_realm_id)
    return None


def watch_wait(settings: Settings) -> float:
    """Seconds from a change in QuickBooks to its alert, at most (webhook window, grace,
    one tick of the loop and the check): how long the console waits after a ``qbo`` verb."""
    grace = settings.portal_sync_grace_minutes * 60
    return 1.0 + grace + min(30.0, max(0.2, grace / 5)) + 2.0


def start_watch(deps: Container, feed: ChangeFeed | None = None) -> bool:
    """Run the watch in the background (once); False when there is nowhere to alert."""
    if not deps.settings.payment_alerts_channel:
        log.info("QuickBooks watch off (set ALERT_CHANNEL or DIGEST_CHANNEL to have it)")
        return False
    watch = watch_of(deps, feed)
    if deps.watcher is None:
        deps.watcher = asyncio.create_task(watch.run_forever(), name="qbo-watch")
    return True
