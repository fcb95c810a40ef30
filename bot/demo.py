"""The sandbox stack: fake QuickBooks Online, fake portal, Slack emulator and the bot, each
a real HTTP server on loopback. Used by `invoicebot console` and the end-to-end tests."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.app import build_app
from bot.bootstrap import Container, bootstrap
from bot.flows.fixes import resume_fixes
from bot.flows.payment_alerts import start_payment_alerts
from bot.flows.resync import resume_jobs
from bot.flows.watch import start_watch
from bot.http import QBO_WEBHOOK_PATH, SLACK_PATH, build_http_app
from bot.settings import Settings
from sandbox.portal.connect import PortalState, create_portal_app
from sandbox.portal.payments import run_seeded_history
from sandbox.qbo.app import QboState, create_qbo_app
from sandbox.qbo.webhooks import Format, WebhookSender
from sandbox.scenarios import REALM_ID
from sandbox.server import RunningServer, start_server
from sandbox.slack.emulator import SlackEmulator
from sandbox.slack.state import ALICE, BOB

BOT_CLIENT = ("sandbox-bot", "sandbox-bot-secret")
PORTAL_CLIENT = ("sandbox-portal", "sandbox-portal-secret")
WEBHOOK_VERIFIER = "sandbox-webhook-verifier"
WEBHOOK_WINDOW = 0.5
"""The fake QuickBooks gathers changes this long before it delivers them (Intuit: minutes)."""
DEMO_TRANSFER_DELAY = 5.0
"""`make demo`: a client's portal payment stays pending this long before its transfer."""
DEMO_GRACE_MINUTES = 0.05
"""`make demo`: a change is re-checked 3 s later (PORTAL_SYNC_GRACE_MINUTES, 15 in production)."""


@dataclass
class SandboxWorld:
    """The fake systems, without the bot (tests run one or several bots against them)."""

    qbo: QboState
    portal: PortalState
    emulator: SlackEmulator
    qbo_url: str
    portal_url: str
    bot_refresh_token: str

    def bot_settings(self, *, database_url: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "slack_bot_token": SecretStr(self.emulator.bot_token),
            "slack_signing_secret": SecretStr(self.emulator.signing_secret),
            "slack_mode": "http",
            "slack_api_url": self.emulator.api_url,
            "http_host": "127.0.0.1",
            "http_port": 0,
            "qbo_base_url": self.qbo_url,
            "qbo_token_url": f"{self.qbo_url}/oauth2/v1/tokens/bearer",
            "qbo_realm_id": self.qbo.realm_id,
            "qbo_client_id": BOT_CLIENT[0],
            "qbo_client_secret": SecretStr(BOT_CLIENT[1]),
            "qbo_refresh_token": SecretStr(self.bot_refresh_token),
            "portal_base_url": self.portal_url,
            "portal_api_key": SecretStr(self.portal.api_key),
            "database_url": database_url,
            "resync_poll_seconds": 0.5,
            "slack_channel_interval_seconds": 0.3,
            # The demo's people approve fixes in QuickBooks (never their own proposal).
            "fix_approvers": [ALICE.id, BOB.id],
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)


@asynccontextmanager
async def sandbox_world(
    *,
    now: datetime | None = None,
    matching: int | None = None,
    sync_seconds: float = 3.0,
    record_resync_seconds: float = 1.0,
    qbo_port: int = 0,
    portal_port: int = 0,
    slack_port: int = 0,
    signing_secret: str | None = None,
) -> AsyncIterator[SandboxWorld]:
    """The fake systems on loopback (port 0: any free port). ``matching``: how many
    invoices match on both sides (see ``sandbox.scenarios``; a larger world has some
    stale copies too)."""
    from services.models import utcnow  # the sandbox itself does not import services

    now = now or utcnow()
    extra: dict[str, Any] = {} if matching is None else {"matching": matching}
    async with AsyncExitStack() as stack:
        qbo = QboState.seeded(now, **extra)
        bot_refresh = qbo.register_client(*BOT_CLIENT)
        portal_refresh = qbo.register_client(*PORTAL_CLIENT)
        qbo_server = await start_server(create_qbo_app(qbo), port=qbo_port)
        stack.push_async_callback(qbo_server.stop)
        portal = PortalState.seeded(
            now,
            qbo_base_url=qbo_server.url,
            qbo_token_url=f"{qbo_server.url}/oauth2/v1/tokens/bearer",
            qbo_realm_id=REALM_ID,
            qbo_client_id=PORTAL_CLIENT[0],
            qbo_client_secret=PORTAL_CLIENT[1],
            qbo_refresh_token=portal_refresh,
            **extra,
        )
        portal.sync_duration = sync_seconds
        portal.record_resync_seconds = record_resync_seconds
        stack.push_async_callback(portal.aclose)
        portal_server = await start_server(create_portal_app(portal), port=portal_port)
        stack.push_async_callback(portal_server.stop)
        await run_seeded_history(portal)  # the stories' payment runs, days ago
        qbo.forget_requests()
        emulator = SlackEmulator(signing_secret=signing_secret or secrets.token_hex(16))
        await emulator.start(port=slack_port)
        stack.push_async_callback(emulator.stop)
        yield SandboxWorld(
            qbo=qbo,
            portal=portal,
            emulator=emulator,
            qbo_url=qbo_server.url,
            portal_url=portal_server.url,
            bot_refresh_token=bot_refresh,
        )


@dataclass
class RunningBot:
    container: Container
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url + SLACK_PATH


@asynccontextmanager
async def running_bot(settings: Settings, **swaps: Any) -> AsyncIterator[RunningBot]:
    """The bot in HTTP mode on loopback, with unfinished jobs resumed."""
    container = await bootstrap(settings, **swaps)
    try:
        await resume_jobs(container)  # before the first request: its own jobs come first
        container.tasks.spawn_long(resume_fixes(container), name="fixes:resume")
        start_payment_alerts(container)
        start_watch(container)
        server = await start_server(
            build_http_app(build_app(container), container),
            host=settings.http_host,
            port=settings.http_port,
        )
        try:
            yield RunningBot(container=container, server=server)
        finally:
            await server.stop()
    finally:
        await container.aclose()


@asynccontextmanager
async def demo_stack(
    *,
    webhook_format: Format = "cloudevents",
    transfer_delay: float = DEMO_TRANSFER_DELAY,
    **world_options: Any,
) -> AsyncIterator[tuple[SandboxWorld, RunningBot]]:
    """Everything `make demo` runs, with a fresh database in a temporary folder; the fake
    QuickBooks delivers its webhooks to the bot in ``webhook_format``."""
    with tempfile.TemporaryDirectory(prefix="invoicebot-") as folder:
        database_url = f"sqlite+aiosqlite:///{Path(folder) / 'demo.db'}"
        async with sandbox_world(**world_options) as world:
            settings = world.bot_settings(
                database_url=database_url,
                alert_channel=world.emulator.channel,  # failed payments, as they happen
                payment_alert_seconds=1.0,
                qbo_webhook_verifier=SecretStr(WEBHOOK_VERIFIER),
                portal_sync_grace_minutes=DEMO_GRACE_MINUTES,
            )
            async with running_bot(settings) as bot:
                world.emulator.request_url = bot.url
                world.portal.transfer_delay = transfer_delay
                webhooks = WebhookSender(
                    realm_id=world.qbo.realm_id,
                    url=bot.server.url + QBO_WEBHOOK_PATH,
                    verifier=WEBHOOK_VERIFIER,
                    format=webhook_format,
                    window=WEBHOOK_WINDOW,
                )
                world.qbo.on_change = webhooks.notify
                try:
                    yield world, bot
                finally:
                    world.qbo.on_change = None
                    await webhooks.aclose()
