"""Wire everything with production defaults; tests swap any part by passing it in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.pacer import ChannelPacer
from bot.settings import Settings
from bot.tasks import BackgroundTasks
from services.adapters.portal import PortalClient
from services.adapters.qbo import QboClient
from services.models import TokenSet, utcnow
from services.ports import AccountingSystem, BillingPortal
from services.resync import PollPolicy, ResyncRunner
from services.storage.audit import AuditLog
from services.storage.db import Database
from services.storage.jobs import JobStore
from services.storage.tokens import DbTokenStore


@dataclass
class Container:
    settings: Settings
    db: Database
    accounting: AccountingSystem
    portal: BillingPortal
    slack: AsyncWebClient
    audit: AuditLog
    jobs: JobStore
    runner: ResyncRunner
    pacer: ChannelPacer = field(default_factory=ChannelPacer)
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    clock: Callable[[], datetime] = utcnow

    async def aclose(self) -> None:
        await self.tasks.cancel_all()
        await self.accounting.aclose()
        await self.portal.aclose()
        await self.db.dispose()


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


async def token_store(settings: Settings, db: Database) -> DbTokenStore:
    """The QBO token store, seeded with QBO_REFRESH_TOKEN the first time."""
    store = DbTokenStore(db, connection=f"qbo:{settings.qbo_realm_id}")
    if await store.load() is None and settings.qbo_refresh_token is not None:
        await store.save(
            TokenSet(
                access_token="",
                access_token_expires_at=datetime(1970, 1, 1, tzinfo=UTC),
                refresh_token=settings.qbo_refresh_token.get_secret_value(),
            )
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
) -> Container:
    db = db or Database(settings.database_url)
    await db.create_all()
    if accounting is None:
        accounting = QboClient(
            base_url=settings.qbo_base_url,
            token_url=settings.qbo_token_url,
            realm_id=settings.qbo_realm_id,
            client_id=settings.qbo_client_id,
            client_secret=settings.qbo_client_secret,
            token_store=await token_store(settings, db),
            transport=transport,
            timeout=settings.qbo_timeout_seconds,
            minor_version=settings.qbo_minor_version,
        )
    if portal is None:
        portal = PortalClient(
            base_url=settings.portal_base_url,
            api_key=settings.portal_api_key,
            transport=transport,
            timeout=settings.portal_timeout_seconds,
        )
    jobs = JobStore(db)
    poll = PollPolicy(
        interval=settings.resync_poll_seconds,
        max_interval=max(settings.resync_poll_seconds, 10.0),
        timeout=settings.resync_timeout_seconds,
    )
    return Container(
        settings=settings,
        db=db,
        accounting=accounting,
        portal=portal,
        slack=slack or slack_client(settings),
        audit=AuditLog(db),
        jobs=jobs,
        pacer=ChannelPacer(settings.slack_channel_interval_seconds),
        runner=ResyncRunner(
            accounting=accounting, portal=portal, jobs=jobs, poll=poll, clock=clock
        ),
        clock=clock,
    )
