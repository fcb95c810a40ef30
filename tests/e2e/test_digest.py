"""`/invoice digest` and the scheduled digest through the real bolt app and the emulator."""

from __future__ import annotations

import asyncio
import csv
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.demo import RunningBot, SandboxWorld, running_bot
from bot.flows.digest import scheduled_digest
from bot.scheduler import DigestScheduler, once_at
from commands.actions import ActionId
from services.digest import RunState, Trigger
from services.models import utcnow
from tests.e2e.conftest import FAST, buttons, channel_messages, settle, thread

ALICE = "U0ALICE001"
CHANNEL = "C0FINANCE1"


def by_number_text(messages: list[Any], number: str) -> str:
    return str(next(m.text for m in messages if m.text.startswith(number)))


def button_number(world: SandboxWorld, message: Any, action: ActionId) -> int:
    for number, (ts, action_id, _) in world.emulator.state.elements_by_number.items():
        if ts == message.ts and action_id == action.value:
            return number
    raise AssertionError(f"no {action.value} button on {message.text!r}")


async def test_digest_posts_a_summary_and_the_discrepancies_in_its_thread(
    world: SandboxWorld, bot: RunningBot
) -> None:
    await world.emulator.send_command("/invoice", "digest")
    await settle(world, bot)
    [note] = world.emulator.state.ephemerals(ALICE)
    assert "Comparing every open invoice" in note.text
    [root] = channel_messages(world)
    [run] = await bot.container.digests.recent()
    assert run.state is RunState.DONE and run.message_ts == root.ts
    assert run.trigger is Trigger.COMMAND and run.requested_by == ALICE
    assert f"{run.discrepancies} of {run.open_invoices} open invoices differ" in root.text
    assert "Discrepancy digest" in root.text and buttons(root) == []
    messages = [m for m in thread(world, root.ts) if m.ts != root.ts]
    replies = [m for m in messages if "Cause:" in str(m.blocks)]
    headers = [m for m in messages if m not in replies]
    assert len(replies) == run.discrepancies  # one message each: few enough for buttons
    # Grouped by cause, money at risk first: what a resync would take out of view leads.
    assert headers[0].text.startswith("Invoice recreated in QuickBooks")
    assert "$30.00 of client money at risk" in headers[0].text
    assert headers[1].text.startswith("Credit not applied")
    assert headers[2].text.startswith("Payment failed to transfer")
    assert [m.text.split(" ")[0] for m in messages[1:3]] == ["11267", "11261"]
    paid_but_failed = messages[messages.index(headers[2]) + 1]
    assert paid_but_failed.text.startswith("11265")
    assert buttons(paid_but_failed) == ["Resync anyway", "Prepare fix in QuickBooks"]
    # One taxonomy: the summary counts by the thread's causes; a voided invoice is void.
    assert "Payment failed to transfer" in str(root.blocks)
    assert "Stale balance" not in str(root.blocks)
    assert "void in QuickBooks" in by_number_text(replies, "11270")
    by_number = {m.text.split(" ")[0]: m for m in replies}
    assert buttons(by_number["11260"]) == ["Resync invoice", "Resync full integration"]
    assert "QuickBooks $50.00, portal $40.00" in by_number["11260"].text
    assert "paid in QuickBooks" in by_number["11264"].text
    assert not world.emulator.state.files
    assert world.portal.request_count("POST", "/api/v1/invoices/lookup") == 1


async def test_a_digest_button_runs_the_existing_resync_in_the_digest_thread(
    world: SandboxWorld, bot: RunningBot
) -> None:
    await world.emulator.send_command("/invoice", "digest")
    await settle(world, bot)
    [root] = channel_messages(world)
    card = next(m for m in thread(world, root.ts) if m.text.startswith("11260"))
    await world.emulator.click(button_number(world, card, ActionId.RESYNC_INVOICE))
    await settle(world, bot)
    texts = [str(m.blocks) for m in thread(world, root.ts)]
    assert "Fixed." in texts[-1]
    assert world.portal.invoices["11260"].balance == Decimal("50.00")
    clicked = next(m for m in thread(world, root.ts) if m.ts == card.ts)
    assert buttons(clicked) == [] and "Record resync started" in str(clicked.blocks)
    others = [m for m in thread(world, root.ts) if m.text.startswith("11262")]
    assert buttons(others[0]) == ["Resync invoice", "Resync full integration"]


async def test_a_second_digest_while_one_runs_is_refused_privately(
    world: SandboxWorld, bot: RunningBot
) -> None:
    world.qbo.knobs.latency = 0.4  # a slow scan
    await world.emulator.send_command("/invoice", "digest")
    for _ in range(100):
        runs = await bot.container.digests.recent()
        if runs and runs[0].state is RunState.RUNNING:
            break
        await asyncio.sleep(0.02)
    await world.emulator.send_command("/invoice", "digest", user="U0BOB00001")
    await settle(world, bot)
    refused = world.emulator.state.ephemerals("U0BOB00001")
    assert any("already running" in m.text for m in refused)
    assert len(channel_messages(world)) == 1
    assert [r.state for r in await bot.container.digests.recent()] == [RunState.DONE]


async def test_a_long_list_goes_to_a_csv_file(world: SandboxWorld, bot: RunningBot) -> None:
    yesterday = utcnow() - timedelta(days=1)
    for i in range(40):
        number = str(11000 + i)
        invoice = world.qbo.invoice(number)
        world.qbo.update_invoice(number, balance=invoice.balance + 1, when=yesterday)
    await world.emulator.send_command("/invoice", "digest")
    await settle(world, bot)
    [root] = channel_messages(world)
    [upload] = list(world.emulator.state.files.values())
    assert upload.thread_ts == root.ts and upload.name.endswith(".csv")
    lines = (upload.content or b"").decode().splitlines()
    [run] = await bot.container.digests.recent()
    assert run.discrepancies is not None and run.discrepancies > 40
    assert len(lines) == 1 + run.discrepancies
    rows = list(csv.DictReader(lines))
    causes = {row["number"]: row["cause"] for row in rows}
    assert sum(1 for c in causes.values() if c) == 30  # the worst 30, re-checked
    assert causes["11265"] == "payment_not_transferred" and causes["11270"] == "invoice_voided"
    replies = [m for m in thread(world, root.ts) if m.ts != root.ts]
    assert sum(1 for m in replies if buttons(m)) == 30
    assert any("in the CSV file" in m.text for m in replies)


async def test_a_scan_that_cannot_finish_is_reported_as_failed(
    world: SandboxWorld, database_url: str
) -> None:
    settings = world.bot_settings(
        database_url=database_url,
        qbo_max_retries=1,
        qbo_retry_backoff_seconds=0.01,
        **{**FAST, "qbo_max_retry_wait_seconds": 0.02},
    )
    async with running_bot(settings) as bot:
        world.emulator.request_url = bot.url
        world.qbo.knobs.fault_rate = 1.0
        await world.emulator.send_command("/invoice", "digest")
        await settle(world, bot)
        [root] = channel_messages(world)
        assert "could not finish" in root.text and "differ" not in str(root.blocks)
        assert thread(world, root.ts) in ([], [root])
        [run] = await bot.container.digests.recent()
        assert run.state is RunState.FAILED and run.open_invoices is None
        assert "QuickBooks Online" in (run.detail or "")


async def test_the_schedule_posts_to_the_digest_channel_once_a_day(
    world: SandboxWorld, database_url: str
) -> None:
    settings = world.bot_settings(
        database_url=database_url, digest_channel=CHANNEL, digest_timezone="America/Chicago", **FAST
    )
    async with running_bot(settings) as bot:
        scheduler = DigestScheduler(
            bot.container, trigger=once_at(utcnow() + timedelta(seconds=0.2))
        )
        scheduler.start()
        try:
            for _ in range(100):
                if channel_messages(world):
                    break
                await asyncio.sleep(0.05)
            await settle(world, bot)
        finally:
            scheduler.shutdown()
        [root] = channel_messages(world)
        assert "Scheduled digest" in str(root.blocks)
        [run] = await bot.container.digests.recent()
        assert run.trigger is Trigger.SCHEDULE and run.state is RunState.DONE
        assert run.day == utcnow().astimezone(ZoneInfo("America/Chicago")).date()
        assert await scheduled_digest(bot.container) is None  # today's has run
        assert len(channel_messages(world)) == 1


async def test_a_digest_line_whose_recheck_fails_offers_no_write(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """The portal fails every read of 11265 while the digest re-checks it: its line says
    so, carries only Check again, and the summary and the stored run count it."""
    from tests.faults_support import fault_bot

    async with fault_bot(world, tmp_path) as bot:
        world.portal.inject(500, count=40, path="/api/v1/invoices/11265")
        await world.emulator.send_command("/invoice", "digest")
        await settle(world, bot)
        [root] = channel_messages(world)
        line = next(m for m in thread(world, root.ts) if m.text.startswith("11265"))
        assert buttons(line) == ["Check again"]
        assert "Could not re-check its cause" in str(line.blocks)
        assert "1 could not be re-checked" in str(root.blocks)
        [run] = await bot.container.digests.recent()
        assert run.rechecks_failed == 1
        world.portal.faults.clear()
        await world.emulator.click(button_number(world, line, ActionId.CHECK_AGAIN))
        await settle(world, bot)
        check = channel_messages(world)[-1]
        assert "Invoice 11265" in check.text and "Payment failed to transfer" in check.text
        assert world.portal.request_count("POST", "/api/v1/record-resyncs") == 0
