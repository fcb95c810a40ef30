"""Wire everything with production defaults; tests swap any part by passing it in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.identity import Identity, release_identity, take_identity
from bot.metrics import Metrics
from bot.observe import BotObserver, timing_hooks
from bot.pacer import ChannelPacer
from bot.redact import install_redaction
from bot.settings import Settings
from bot.tasks import Handoff, Kind, TaskRunner
from services.adapters.portal import PortalClient
from services.adapters.qbo import QboClient
from services.adapters.qbo.auth import needs_seed
from services.fixes import FixService
from services.followups import FollowUpStore
from services.guard import WriteGuard
from services.models import TokenSet, utcnow
from services.ports import AccountingSystem, AccountingWriter, BillingPortal
from services.resync import PollPolicy, ResyncRunner
from services.storage.audit import AuditLog
from services.storage.db import Database
from services.storage.digests import DigestRuns
from services.storage.fixes import FixProposalStore
from services.storage.followups import SqlFollowUps
from services.storage.jobs import SqlJobStore
from services.storage.payment_alerts import PaymentAlerts
from services.storage.tokens import DbTokenStore


@dataclass
class Container:
    settings: Settings
    db: Database
    accounting: AccountingSystem
    portal: BillingPortal
    slack: AsyncWebClient
    audit: AuditLog
    jobs: SqlJobStore
    runner: ResyncRunner
    guard: WriteGuard
    followups: FollowUpStore
    pacer: ChannelPacer = field(default_factory=ChannelPacer)
    tasks: TaskRunner = field(default_factory=TaskRunner)
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    """The waits of the background timers: claim renewals (heartbeats) and sweeps."""
    metrics: Metrics = field(default_factory=Metrics)
    """This bot's metrics, in a registry of its own (served at /metrics)."""
    digests: DigestRuns = field(init=False)
    payment_alerts: PaymentAlerts = field(init=False)
    running_jobs: set[str] = field(default_factory=set)
    """Jobs this replica is running now."""
    sweeper: asyncio.Task[None] | None = None
    """The periodic sweep for jobs whose replica died (bot.flows.replicas)."""
    alerter: asyncio.Task[None] | None = None
    """The poll for failed portal payments (bot.flows.payment_alerts)."""
    watcher: asyncio.Task[None] | None = None
    """The QuickBooks watch's loop (bot.flows.watch)."""
    watch: Any = None
    """The QuickBooks watch itself (bot.flows.watch.Watch), made when first needed."""
    fixes: FixService | None = None
    """Fixes in QuickBooks (services.fixes); None when the accounting adapter cannot write."""
    fix_sweeper: asyncio.Task[None] | None = None
    """The periodic sweep for approved fixes whose replica died (bot.flows.fixes)."""
    identity: Identity | None = None
    """This process's name and the lease that keeps it its own (bot.identity)."""
    work: Handoff | None = None
    """Where listeners hand their work after the ack (bot.work): set by ``build_app``."""

    def __post_init__(self) -> None:
        self.digests = DigestRuns(self.db)
        self.payment_alerts = PaymentAlerts(self.db)
        self.metrics.watch_tasks(
            lambda kind, waiting: self.tasks.count(Kind(kind), waiting=waiting)
        )

    @property
    def replica(self) -> str:
        """This process's name in job claims and leases."""
        return self.jobs.worker

    async def aclose(self) -> None:
        for loop_task in (self.sweeper, self.alerter, self.watcher, self.fix_sweeper):
            if loop_task is not None:
                loop_task.cancel()
                await asyncio.wait([loop_task])
        # Request work is given a few seconds to finish; running jobs are then released to
        # the other replicas.
        await self.tasks.wind_down(grace=STOP_GRACE)
        if self.identity is not None:
            with contextlib.suppress(Exception):
                await release_identity(self.db, self.identity)
        await self.accounting.aclose()
        await self.portal.aclose()
        await self.db.dispose()


STOP_GRACE = 5.0
"""Seconds a stopping bot gives the request work under way to finish."""


def slack_client(settings: Settings) -> AsyncWebClient:
    retry_handlers: list[AsyncRetryHandler] = [
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        AsyncRateLimitErrorRetryHandler(max_retry_count=5),
    ]
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value() or None,
        base_url=settings.slack_api_url,
        retry_handlers=retry_handlers,
    )


def qbo_system(token_url: str) -> Callable[[httpx.Request], str]:
    """The metrics' name for a request of the QuickBooks client: its API or its tokens."""
    token = httpx.URL(token_url)
    return lambda request: "qbo_token" if request.url.path == token.path else "qbo"


async def token_store(settings: Settings, db: Database) -> DbTokenStore:
    """The QBO token store, seeded with QBO_REFRESH_TOKEN the first time, and again when the
    stored connection was refused (revoked) and an admin configured a new token."""
    store = DbTokenStore(
        db, connection=f"qbo:{settings.qbo_realm_id}", cipher=settings.token_cipher()
    )
    seed = settings.qbo_refresh_token
    stored = await store.load()
    if seed is not None and needs_seed(stored, seed.get_secret_value(), utcnow()):
        await store.seed(  # atomic: another replica may be seeding or refreshing right now
            TokenSet(
                access_token="",
                access_token_expires_at=datetime(1970, 1, 1, tzinfo=UTC),
                refresh_token=seed.get_secret_value(),
            ),
            replacing=stored.refresh_token if stored is not None else None,
        )
    return store


async def bootstrap(
    settings: Settings,
    *,
    db: Database | None = None,
    accounting: AccountingSystem | None = None,
    portal: BillingPortal | None = None,
    slack: AsyncWebClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    writer: AccountingWriter | None = None,
) -> Container:
    install_redaction(settings)  # before anything can log a secret
    metrics = Metrics()
    observer = BotObserver(metrics)
    db = db or Database(settings.database_url)
    await db.upgrade()  # Alembic: create or upgrade the schema
    if accounting is None:
        accounting = QboClient(
            base_url=settings.qbo_base_url,
            token_url=settings.qbo_token_url,
            realm_id=settings.qbo_realm_id,
            client_id=settings.qbo_client_id,
            client_secret=settings.qbo_client_secret,
            token_store=await token_store(settings, db),
            transport=transport,
            event_hooks=timing_hooks(metrics, qbo_system(settings.qbo_token_url)),
            timeout=settings.qbo_timeout_seconds,
            minor_version=settings.qbo_minor_version,
            max_retries=settings.qbo_max_retries,
            retry_backoff=settings.qbo_retry_backoff_seconds,
            max_retry_wait=settings.qbo_max_retry_wait_seconds,
            max_per_minute=settings.qbo_max_per_minute,
            lookup_batch=settings.qbo_lookup_batch,
            list_concurrency=settings.qbo_list_concurrency,
            observer=observer,
        )
    if portal is None:
        portal = PortalClient(
            base_url=settings.portal_base_url,
            api_key=settings.portal_api_key,
            transport=transport,
            event_hooks=timing_hooks(metrics, lambda _: "portal"),
            timeout=settings.portal_timeout_seconds,
            max_retries=settings.portal_max_retries,
            backoff=settings.portal_retry_backoff_seconds,
            max_retry_wait=settings.portal_max_retry_wait_seconds,
            lookup_concurrency=settings.portal_lookup_concurrency,
            observer=observer,
        )
    lease = timedelta(seconds=settings.job_lease_seconds)
    identity = await take_identity(db, replica_id=settings.replica_id, ttl=lease, clock=clock)
    jobs = SqlJobStore(db, worker=identity.name, lease=lease, clock=clock)
    poll = PollPolicy(
        interval=settings.resync_poll_seconds,
        max_interval=max(settings.resync_poll_seconds, 10.0),
        timeout=settings.resync_timeout_seconds,
        request_grace=settings.resync_request_grace_seconds,
    )
    guard = WriteGuard(
        accounting=accounting, portal=portal, tolerance=settings.money_tolerance, clock=clock
    )
    followups = SqlFollowUps(db)
    if writer is None and isinstance(accounting, QboClient):
        writer = accounting
    container = Container(
        settings=settings,
        db=db,
        accounting=accounting,
        portal=portal,
        slack=slack or slack_client(settings),
        audit=AuditLog(db),
        jobs=jobs,
        pacer=ChannelPacer(settings.slack_channel_interval_seconds),
        guard=guard,
        followups=followups,
        runner=ResyncRunner(
            accounting=accounting,
            portal=portal,
            jobs=jobs,
            guard=guard,
            followups=followups,
            poll=poll,
            clock=clock,
            tolerance=settings.money_tolerance,
        ),
        clock=clock,
        sleep=sleep,
        metrics=metrics,
        identity=identity,
    )
    if writer is not None:
        container.fixes = FixService(
            accounting=accounting,
            writer=writer,
            portal=portal,
            records=FixProposalStore(db, worker=jobs.worker),
            followups=followups,
            audit=container.audit,
            proposal_hours=settings.fix_proposal_hours,
            tolerance=settings.money_tolerance,
            clock=clock,
        )
    return container
