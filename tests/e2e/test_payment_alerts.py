"""The failed-payment alert: a client pays in the portal, QuickBooks refuses the transfer,
and the alert is in the channel within a poll, not in the next morning's digest. Each
failure is alerted once: across polls, restarts and replicas."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.demo import RunningBot, SandboxWorld, running_bot
from bot.flows.payment_alerts import alert_failed_payments
from sandbox.portal.payments import take_payment
from services.models import utcnow
from tests.e2e.conftest import FAST, buttons, channel_messages
from tests.processes import until

ALERTS: dict[str, Any] = {
    **FAST,
    "alert_channel": "C0FINANCE1",
    "payment_alert_seconds": 0.1,
}


def alerts_on(bot: RunningBot) -> None:
    """Alerts into #finance for a bot started without them (polls are then run by hand)."""
    bot.container.settings = bot.container.settings.model_copy(
        update={"alert_channel": "C0FINANCE1"}
    )


def alerts(world: SandboxWorld) -> list[Any]:
    return [m for m in channel_messages(world) if "failed to transfer" in str(m.blocks)]


async def test_a_failed_transfer_is_alerted_at_once_with_its_cause(
    world: SandboxWorld, database_url: str
) -> None:
    settings = world.bot_settings(database_url=database_url, **ALERTS)
    async with running_bot(settings) as bot:
        world.emulator.request_url = bot.url
        await asyncio.sleep(0.5)  # several polls: the seeded failure, days old, is not news
        assert alerts(world) == []
        paid = await take_payment(world.portal, "11264", Decimal("5.00"), reference="CB-5001")
        assert paid.transfer_status == "failed"
        await until(lambda: len(alerts(world)) == 1, timeout=10)
        await asyncio.sleep(0.5)  # more polls: still one alert
        [alert] = alerts(world)
        shown = str(alert.blocks)
        assert "Portal payment CB-5001 of $5.00" in shown
        assert "Invoice already paid" in shown and "Geeta Kalapatapu" in shown
        assert "Cause: Payment failed to transfer" in shown  # the invoice's diagnosis
        assert "Resync invoice" not in buttons(alert)  # a plain resync would hide it
        assert "Resync anyway" in buttons(alert)
        history = await bot.container.audit.recent()
        assert any(e.action == "payment_alert" and e.target == "11264" for e in history)
    async with running_bot(settings) as again:  # a restart does not alert it again
        world.emulator.request_url = again.url
        await asyncio.sleep(0.5)
    assert len(alerts(world)) == 1


async def test_replicas_alert_a_failure_once(world: SandboxWorld, database_url: str) -> None:
    a = world.bot_settings(database_url=database_url, replica_id="a", **ALERTS)
    b = world.bot_settings(database_url=database_url, replica_id="b", **ALERTS)
    async with running_bot(a), running_bot(b):
        for number, ref in (("11264", "CB-6001"), ("11270", "CB-6002")):
            await take_payment(world.portal, number, Decimal("5.00"), reference=ref)
        await until(lambda: len(alerts(world)) == 2, timeout=10)
        await asyncio.sleep(0.5)
    texts = [str(m.blocks) for m in alerts(world)]
    assert sum("CB-6001" in t for t in texts) == 1 and sum("CB-6002" in t for t in texts) == 1
    assert any("is void" in t for t in texts)  # 11270 was voided in QuickBooks


async def test_a_failure_that_leaves_the_balances_agreeing_still_says_what_to_do(
    world: SandboxWorld, bot: RunningBot
) -> None:
    alerts_on(bot)
    await take_payment(world.portal, "11264", Decimal("89.50"), reference="CB-5002")
    assert await alert_failed_payments(bot.container) == 1
    [alert] = alerts(world)
    assert "In sync" in str(alert.blocks)  # both $0.00: the client paid twice
    assert "on record in the portal only" in str(alert.blocks)


class FailingFirstPost:
    """Slack, except that the first message cannot be posted."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def chat_postMessage(self, **kwargs: Any) -> Any:
        if not self.failed:
            self.failed += 1
            raise SlackApiError(  # type: ignore[no-untyped-call]
                "internal_error", {"ok": False, "error": "internal_error"}
            )
        return await self._inner.chat_postMessage(**kwargs)


async def test_an_alert_that_could_not_be_posted_is_posted_at_the_next_poll(
    world: SandboxWorld, bot: RunningBot
) -> None:
    flaky = FailingFirstPost(bot.container.slack)
    bot.container.slack = flaky  # type: ignore[assignment]
    alerts_on(bot)
    await take_payment(world.portal, "11264", Decimal("89.50"), reference="CB-7001")
    assert await alert_failed_payments(bot.container) == 0  # logged, not raised
    assert flaky.failed == 1 and alerts(world) == []
    registry = bot.container.metrics.registry
    assert registry.get_sample_value("invoicebot_payment_alerts_total") == 0
    assert await alert_failed_payments(bot.container) == 1
    assert registry.get_sample_value("invoicebot_payment_alerts_total") == 1
    assert await alert_failed_payments(bot.container) == 0
    assert len(alerts(world)) == 1


async def test_one_alert_that_cannot_be_posted_does_not_hold_up_the_others(
    world: SandboxWorld, bot: RunningBot
) -> None:
    flaky = FailingFirstPost(bot.container.slack)  # the oldest failure's alert fails
    bot.container.slack = flaky  # type: ignore[assignment]
    alerts_on(bot)
    await take_payment(world.portal, "11264", Decimal("5.00"), reference="CB-7101")
    await take_payment(world.portal, "11270", Decimal("5.00"), reference="CB-7102")
    assert await alert_failed_payments(bot.container) == 1
    assert "CB-7102" in str(alerts(world)[0].blocks)
    assert await alert_failed_payments(bot.container) == 1  # the first one, at the next poll
    assert sorted("CB-7101" in str(m.blocks) for m in alerts(world)) == [False, True]


async def test_a_claim_left_by_a_replica_that_died_before_posting_is_taken_over(
    world: SandboxWorld, bot: RunningBot
) -> None:
    alerts_on(bot)
    paid = await take_payment(world.portal, "11264", Decimal("5.00"), reference="CB-7201")
    [failed] = [
        p
        for p in await bot.container.portal.list_failed_payments(
            since=utcnow() - timedelta(hours=1)
        )
        if p.reference == "CB-7201"
    ]
    assert paid.id == failed.id
    store = bot.container.payment_alerts
    assert await store.claim(payment=failed, channel="C0FINANCE1")  # ... and then it died
    assert await alert_failed_payments(bot.container) == 0  # a fresh claim: somebody is on it
    assert not await store.claim(
        payment=failed, channel="C0FINANCE1", stale_after=timedelta(hours=1)
    )
    assert await store.claim(payment=failed, channel="C0FINANCE1", stale_after=timedelta(0))
    await store.release(payment_id=failed.id)
    assert await alert_failed_payments(bot.container) == 1
    assert not await store.claim(payment=failed, channel="C0FINANCE1", stale_after=timedelta(0))


async def test_portal_text_cannot_ping_or_link_in_the_channel(
    world: SandboxWorld, bot: RunningBot
) -> None:
    alerts_on(bot)
    await take_payment(world.portal, "11264", Decimal("5.00"), reference="<!channel>")
    assert await alert_failed_payments(bot.container) == 1
    [alert] = alerts(world)
    shown = str(alert.blocks)
    assert "&lt;!channel&gt;" in shown and "<!channel>" not in shown
