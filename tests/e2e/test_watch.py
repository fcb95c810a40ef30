"""The QuickBooks webhook endpoint on the bot's HTTP port: intuit-signature, both formats,
events stored and deduplicated before the 200, other companies' events ignored and counted,
malformed bodies refused with nothing stored; then the re-check after the grace (an
injected clock), one alert per invoice updated in place, and the CDC catch-up."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.app import build_app
from bot.bootstrap import bootstrap
from bot.demo import RunningBot, SandboxWorld, running_bot
from bot.flows.watch import CDC_MARK, watch_of
from bot.http import MAX_WEBHOOK_BYTES, QBO_WEBHOOK_PATH, build_http_app
from sandbox.qbo.webhooks import Change, payload, sign
from sandbox.server import serving
from services.models import utcnow
from tests.e2e.conftest import FAST, channel_messages

VERIFIER = "test-verifier"


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def bot(world: SandboxWorld, database_url: str, clock: Clock) -> AsyncIterator[RunningBot]:
    """No alert channel at start: the watch loop is not running, the test drives it."""
    settings = world.bot_settings(
        database_url=database_url,
        qbo_webhook_verifier=SecretStr(VERIFIER),
        portal_sync_grace_minutes=15,
        **FAST,
    )
    async with running_bot(settings, clock=clock) as running:
        world.emulator.request_url = running.url
        running.container.settings = settings.model_copy(update={"alert_channel": "C0FINANCE1"})
        yield running


async def deliver(bot: RunningBot, body: Any, *, verifier: str = VERIFIER) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with httpx.AsyncClient() as client:
        return await client.post(
            bot.server.url + QBO_WEBHOOK_PATH,
            content=raw,
            headers={"intuit-signature": sign(raw, verifier), "content-type": "application/json"},
        )


def invoice_change(
    world: SandboxWorld,
    number: str,
    *,
    realm: str | None = None,
    later: int = 0,
    at: datetime | None = None,
    form: Any = "cloudevents",
) -> Any:
    """A change event of the invoice at ``at`` (default: ``later`` seconds after now; a
    change's id is its entity and last update time to the second)."""
    invoice = world.qbo.invoice(number)
    when = at or datetime.now(UTC) + timedelta(seconds=later)
    change = Change("Invoice", invoice.id, "Update", when)
    return payload([change], realm_id=realm or world.qbo.realm_id, form=form)


def metric(bot: RunningBot, outcome: str) -> float:
    value = bot.container.metrics.registry.get_sample_value(
        "invoicebot_qbo_webhook_events_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_a_bad_signature_is_refused_and_changes_nothing(
    world: SandboxWorld, bot: RunningBot
) -> None:
    body = invoice_change(world, "11003")
    assert (await deliver(bot, body, verifier="wrong")).status_code == 401
    raw = json.dumps(body).encode()
    async with httpx.AsyncClient() as client:  # no signature at all
        unsigned = await client.post(bot.server.url + QBO_WEBHOOK_PATH, content=raw)
    assert unsigned.status_code == 401
    watch = watch_of(bot.container)
    assert await watch.store.event_count() == 0
    assert metric(bot, "refused_signature") == 2


async def test_a_body_over_1_mib_is_refused_unread(world: SandboxWorld, bot: RunningBot) -> None:
    huge = b"[" + b" " * MAX_WEBHOOK_BYTES + b"]"
    assert (await deliver(bot, huge)).status_code == 413  # said so by its Content-Length

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: streamed
        for _ in range(3):
            yield b" " * (MAX_WEBHOOK_BYTES // 2)

    async with httpx.AsyncClient() as client:
        streamed = await client.post(bot.server.url + QBO_WEBHOOK_PATH, content=chunks())
    assert streamed.status_code == 413
    assert metric(bot, "too_large") == 2 and metric(bot, "refused_signature") == 0
    assert await watch_of(bot.container).store.event_count() == 0


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b"[]", [{"specversion": "1.0", "id": "x"}], {"eventNotifications": [1]}],
)
async def test_a_malformed_body_is_a_400_with_nothing_stored(
    world: SandboxWorld, bot: RunningBot, body: Any
) -> None:
    assert (await deliver(bot, body)).status_code == 400
    assert await watch_of(bot.container).store.event_count() == 0


async def test_mixed_realms_and_a_repeated_delivery_make_one_recheck(
    world: SandboxWorld, bot: RunningBot, clock: Clock
) -> None:
    at = datetime.now(UTC).replace(microsecond=0)
    ours = invoice_change(world, "11003", at=at)
    theirs = invoice_change(world, "11004", realm="999", at=at)
    mixed = ours + theirs
    first = await deliver(bot, mixed)
    assert first.status_code == 200 and first.json() == {"stored": 1, "ignored": 1}
    again = await deliver(bot, mixed)  # Intuit delivers again: nothing new
    assert again.json() == {"stored": 0, "ignored": 1}
    same = invoice_change(world, "11003", at=at + timedelta(milliseconds=300), form="legacy")
    assert (await deliver(bot, same)).json()["stored"] == 0  # one change, either format
    legacy = invoice_change(world, "11003", at=at + timedelta(seconds=5), form="legacy")
    assert (await deliver(bot, legacy)).json()["stored"] == 1  # a later change
    assert metric(bot, "other_realm") == 2 and metric(bot, "duplicate") == 2
    watch = watch_of(bot.container)
    assert await watch.drain() == 2
    marked = await watch.store.marked()
    assert list(marked) == ["11003"]  # the other company's 11004 is not ours
    assert marked["11003"] == clock.now + timedelta(minutes=15)


async def test_a_change_is_rechecked_after_the_grace_and_alerted_once(
    world: SandboxWorld, bot: RunningBot, clock: Clock
) -> None:
    world.qbo.update_invoice("11003", balance=world.qbo.invoice("11003").balance - 7)
    await deliver(bot, invoice_change(world, "11003"))
    watch = watch_of(bot.container)
    await watch.drain()
    assert await watch.run_due() == 0  # the portal may still be syncing
    assert channel_messages(world) == []
    clock.now += timedelta(minutes=15)
    assert await watch.run_due() == 1
    [alert] = channel_messages(world)
    shown = str(alert.blocks)
    assert "Invoice 11003" in shown and "Stale copy" in shown and "Resync invoice" in shown
    world.qbo.update_invoice("11003", balance=world.qbo.invoice("11003").balance - 1)
    await deliver(bot, invoice_change(world, "11003", later=5))  # changed again: the same alert
    await watch.drain()
    clock.now += timedelta(minutes=15)
    assert await watch.run_due() == 1
    [updated] = channel_messages(world)
    assert updated.ts == alert.ts and str(updated.blocks) != shown


async def test_cdc_catches_up_from_the_last_point_and_says_when_it_cannot(
    world: SandboxWorld, bot: RunningBot, clock: Clock
) -> None:
    watch = watch_of(bot.container)
    assert await watch.catch_up("start") == 0  # the first run only sets the point
    world.qbo.update_invoice("11007", balance=world.qbo.invoice("11007").balance - 3)
    assert await watch.catch_up("schedule") >= 1
    await watch.drain()
    assert "11007" in await watch.store.marked()
    await watch.store.set_mark(name=CDC_MARK, at=clock.now - timedelta(days=31))
    assert await watch.catch_up("start") == 0
    [notice] = channel_messages(world)
    assert "more than 30 days ago" in notice.text


async def test_the_endpoint_is_served_in_socket_mode_too(
    world: SandboxWorld, database_url: str
) -> None:
    settings = world.bot_settings(
        database_url=database_url,
        slack_mode="socket",
        slack_app_token=SecretStr("xapp-1"),
        qbo_webhook_verifier=SecretStr(VERIFIER),
    )
    container = await bootstrap(settings)
    try:
        raw = json.dumps(invoice_change(world, "11003")).encode()
        async with (
            serving(build_http_app(build_app(container), container)) as url,
            httpx.AsyncClient() as client,
        ):
            response = await client.post(
                url + QBO_WEBHOOK_PATH,
                content=raw,
                headers={"intuit-signature": sign(raw, VERIFIER)},
            )
        assert (response.status_code, response.json()["stored"]) == (200, 1)
    finally:
        await container.aclose()


async def test_quiet_hours_leave_a_stale_copy_to_the_digest(
    world: SandboxWorld, bot: RunningBot, clock: Clock
) -> None:
    start, end = clock.now - timedelta(hours=1), clock.now + timedelta(hours=1)
    hours = f"{start:%H:%M}-{end:%H:%M}"  # around the re-check, midnight or not
    settings = bot.container.settings
    bot.container.settings = settings.model_copy(update={"alert_quiet_hours": hours})
    world.qbo.update_invoice("11003", balance=world.qbo.invoice("11003").balance - 7)
    await deliver(bot, invoice_change(world, "11003"))
    watch = watch_of(bot.container)
    await watch.drain()
    clock.now += timedelta(minutes=15)
    assert await watch.run_due() == 0
    assert channel_messages(world) == []  # a stale copy hides no money: it can wait
    assert await watch.store.marked() == {}  # and is not re-checked again and again
