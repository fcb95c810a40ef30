"""Resyncs from Slack, end to end: threads, edits, escalation, once only, permissions."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.demo import RunningBot, SandboxWorld, running_bot
from services.jobs import JobState
from services.models import utcnow
from tests.e2e.conftest import (
    FAST,
    buttons,
    channel_messages,
    confirm_full_resync,
    settle,
    thread,
)

ALICE, BOB = "U0ALICE001", "U0BOB00001"
RECORD_RESYNCS = "/api/v1/record-resyncs"
SYNCS = "/api/v1/integrations/"


def versions_text(message: object) -> list[str]:
    return [str(v.blocks) for v in message.versions]  # type: ignore[attr-defined]


async def test_record_resync_fixes_11260_and_updates_the_root(
    world: SandboxWorld, bot: RunningBot
) -> None:
    emu = world.emulator
    await emu.send_command("/invoice", "check 11260")
    await settle(world, bot)
    await emu.click(emu.number_of("Resync invoice"))
    await settle(world, bot)

    [root] = channel_messages(world)
    progress, outcome = thread(world, root.ts)
    history = versions_text(progress)
    assert "queued" in history[0]
    assert any("verifying" in v for v in history)
    assert "done, fixed" in history[-1]
    assert "Fixed." in str(outcome.blocks) and "$50.00" in str(outcome.blocks)
    assert "In sync" in str(root.blocks)
    assert buttons(root) == []  # no stale buttons left to click
    assert world.portal.request_count("POST", RECORD_RESYNCS) == 1
    assert world.portal.invoices["11260"].balance == world.qbo.invoice("11260").balance


async def test_failed_record_resync_escalates_to_a_full_resync_that_fixes_it(
    world: SandboxWorld, bot: RunningBot
) -> None:
    emu = world.emulator
    await emu.send_command("/invoice", "resync 11261")
    await settle(world, bot)
    [root] = channel_messages(world)
    progress, failure = thread(world, root.ts)
    assert "failed" in versions_text(progress)[-1]
    assert "The portal's resync failed" in str(failure.blocks)
    assert "no longer has the record the portal links to" in str(failure.blocks)
    assert "Object Not Found" not in str(failure.blocks)  # the vendor's words stay in the log
    assert buttons(failure) == ["Resync full integration"]

    await emu.click(emu.number_of("Resync full integration"))
    await settle(world, bot)
    # The run from that date also re-reads 11266, whose credit it would take out of view:
    # asked privately first, nothing started.
    question = emu.state.ephemerals(ALICE)[-1]
    assert "11266" in str(question.blocks) and "CM-1042" in str(question.blocks)
    assert world.portal.request_count("POST", SYNCS) == 0
    await confirm_full_resync(world, bot)
    replies = thread(world, root.ts)
    texts = [str(m.blocks) for m in replies]
    assert any(
        "Money to account for" in m.text and "CM-1042" in t
        for m, t in zip(replies, texts, strict=True)
    )
    assert any("Processed records" in t and "Invoice 11261 was processed" in t for t in texts)
    assert "Fixed." in texts[-1]
    assert "In sync" in str(root.blocks) and buttons(root) == []
    # The escalation's button was answered through the guard's question: not live any more.
    assert buttons(failure) == [] and "started by <@U0ALICE001>" in str(failure.blocks)
    assert buttons(question) == [] and "started by" in question.text  # the question, too
    assert world.portal.request_count("POST", SYNCS) == 1


async def test_the_bots_date_catches_an_invoice_a_one_day_resync_misses(
    world: SandboxWorld, bot: RunningBot
) -> None:
    emu = world.emulator
    yesterday = (utcnow() - timedelta(days=1)).date()
    await emu.send_command("/invoice", f"resync --since {yesterday.isoformat()}")
    await confirm_full_resync(world, bot)
    one_day = [str(m.blocks) for m in thread(world, channel_messages(world)[0].ts)]
    assert any("Processed records" in t for t in one_day)
    assert world.portal.invoices["11262"].balance != world.qbo.invoice("11262").balance

    await emu.send_command("/invoice", "check 11262")
    await settle(world, bot)
    check = channel_messages(world)[-1]
    await emu.click(emu.number_of("Resync full integration"))
    await confirm_full_resync(world, bot)
    texts = [str(m.blocks) for m in thread(world, check.ts)]
    assert any("Invoice 11262 was processed" in t for t in texts)
    assert "Fixed." in texts[-1]
    runs = list(world.portal.runs.values())
    chosen = max(runs, key=lambda r: r.created_at).sync_from
    assert chosen == (world.qbo.invoice("11262").updated - timedelta(days=1)).date()


@pytest.mark.parametrize("clicks", [2, 10])
async def test_clicks_arriving_together_start_one_resync(
    world: SandboxWorld, bot: RunningBot, clicks: int
) -> None:
    emu = world.emulator
    await emu.send_command("/invoice", "check 11260")
    await settle(world, bot)
    number = emu.number_of("Resync invoice")
    world.portal.record_resync_seconds = 1.0
    replies = await asyncio.gather(
        *[emu.click(number) for _ in range(clicks)], return_exceptions=True
    )
    assert any(r is not None and not isinstance(r, BaseException) for r in replies)
    await settle(world, bot)
    assert world.portal.request_count("POST", RECORD_RESYNCS) == 1
    private = [m.text for m in emu.state.ephemerals(ALICE)]
    assert private and all("already" in t for t in private)
    [root] = channel_messages(world)
    assert len([m for m in thread(world, root.ts) if "Fixed." in str(m.blocks)]) == 1


@pytest.mark.parametrize("commands", [2, 10])
async def test_identical_commands_at_once_make_one_thread_and_private_answers(
    world: SandboxWorld, bot: RunningBot, commands: int
) -> None:
    world.portal.record_resync_seconds = 1.5
    emu = world.emulator
    replies = await asyncio.gather(
        *(emu.send_command("/invoice", "resync 11260") for _ in range(commands))
    )
    assert all(r.status == 200 for r in replies)
    await settle(world, bot)
    assert len(channel_messages(world)) == 1  # the losers post nothing in the channel
    assert emu.state.calls_to("chat.delete") == []  # nor post and delete again
    assert world.portal.request_count("POST", RECORD_RESYNCS) == 1
    private = [m.text for m in emu.state.ephemerals(ALICE)]
    assert len(private) == commands - 1 and all("already" in t for t in private)


async def test_full_resync_is_limited_to_the_named_people(
    world: SandboxWorld, database_url: str
) -> None:
    settings = world.bot_settings(database_url=database_url, full_resync_users=[BOB], **FAST)
    async with running_bot(settings) as bot:
        world.emulator.request_url = bot.url
        await world.emulator.send_command("/invoice", "check 11260")
        await settle(world, bot)
        await world.emulator.click(world.emulator.number_of("Resync full integration"))
        await settle(world, bot)
        assert world.portal.request_count("POST", SYNCS) == 0
        [refusal] = world.emulator.state.ephemerals(ALICE)
        assert "limited to the people named" in refusal.text
        audit = await bot.container.audit.recent()
        assert audit[0].action == "resync_full" and audit[0].outcome == "refused"
        [root] = channel_messages(world)
        assert buttons(root) == ["Resync invoice", "Resync full integration"]


async def test_full_resync_allowed_through_a_user_group(
    world: SandboxWorld, database_url: str
) -> None:
    settings = world.bot_settings(
        database_url=database_url, full_resync_groups=["S0FINADMIN"], **FAST
    )
    async with running_bot(settings) as bot:
        world.emulator.request_url = bot.url
        await world.emulator.send_command("/invoice", "resync --since 2026-11-01", user=ALICE)
        await confirm_full_resync(world, bot, user=ALICE)
        assert world.portal.request_count("POST", SYNCS) == 1
        await world.emulator.send_command("/invoice", "resync --since 2026-11-01", user=BOB)
        await settle(world, bot)
        assert world.portal.request_count("POST", SYNCS) == 1
        assert any("limited" in m.text for m in world.emulator.state.ephemerals(BOB))


async def test_full_resync_prompt_with_a_date_picker(world: SandboxWorld, bot: RunningBot) -> None:
    emu = world.emulator
    await emu.send_command("/invoice", "resync")
    await settle(world, bot)
    assert channel_messages(world) == []
    [prompt] = emu.state.ephemerals(ALICE)
    assert "Full resync" in str(prompt.blocks)
    picker = emu.number_of("Sync from")
    chosen = (utcnow() - timedelta(days=5)).date()
    await emu.click(picker, chosen.isoformat())
    await emu.click(emu.number_of("Start full resync"))
    await settle(world, bot)
    # Five days back the run re-reads 11262 and 11266, whose credit it would take out of
    # view: the guard asks again, naming it, before anything starts.
    assert world.portal.request_count("POST", SYNCS) == 0
    assert "CM-1042" in str(emu.state.ephemerals(ALICE)[-1].blocks)
    await emu.click(emu.number_of("Resync anyway"))
    await settle(world, bot)
    [root] = channel_messages(world)
    assert f"from {chosen:%b %d, %Y}" in root.text
    run = max(world.portal.runs.values(), key=lambda r: r.created_at)
    assert run.sync_from == chosen and run.status == "completed"
    texts = [str(m.blocks) for m in thread(world, root.ts)]
    assert any("Processed records" in t for t in texts)
    assert "finished" in texts[-1]


async def test_company_and_contact_resyncs(world: SandboxWorld, bot: RunningBot) -> None:
    emu = world.emulator
    await emu.send_command("/invoice", "resync company 58")
    await settle(world, bot)
    await emu.send_command("/invoice", "resync contact 58")
    await settle(world, bot)
    company, contact = channel_messages(world)
    assert "company *Best Tackle* (id 58)" in company.text  # named, looked up first
    assert "contact *Billing contact, Best Tackle* (id 58)" in contact.text
    assert "finished" in str(thread(world, company.ts)[-1].blocks)
    assert "finished" in str(thread(world, contact.ts)[-1].blocks)


async def test_an_unknown_company_or_contact_is_a_private_error(
    world: SandboxWorld, bot: RunningBot
) -> None:
    emu = world.emulator
    resyncs_before = world.portal.request_count("POST", "/api/v1/record-resyncs")
    for kind in ("company", "contact"):
        await emu.send_command("/invoice", f"resync {kind} 999999")
        await settle(world, bot)
    assert channel_messages(world) == []
    company, contact = emu.state.ephemerals("U0ALICE001")
    assert "The portal has no company with id 999999: nothing was resynced" in company.text
    assert "The portal has no contact with id 999999" in contact.text
    await emu.send_command("/invoice", "resync company payload")  # bolt took it for a click
    await settle(world, bot)
    assert (
        "The portal has no company with id payload" in emu.state.ephemerals("U0ALICE001")[-1].text
    )
    assert world.portal.request_count("POST", "/api/v1/record-resyncs") == resyncs_before


async def test_history_is_private(world: SandboxWorld, bot: RunningBot) -> None:
    since = (utcnow() - timedelta(days=16)).date()
    await world.emulator.send_command("/invoice", f"resync --since {since.isoformat()}")
    await confirm_full_resync(world, bot)
    await world.emulator.send_command("/invoice", "history")
    await settle(world, bot)
    history = world.emulator.state.ephemerals(ALICE)[-1]
    assert "Recent sync runs" in history.text
    assert "completed" in str(history.blocks) and f"from {since:%b %d}" in str(history.blocks)
    # The money that run took out of view is listed with the runs.
    assert "Money still to account for" in str(history.blocks)


async def test_a_job_left_running_is_finished_after_a_restart(
    world: SandboxWorld, database_url: str
) -> None:
    world.portal.sync_duration = 2.0
    settings = world.bot_settings(database_url=database_url, **FAST)
    async with running_bot(settings) as first:
        world.emulator.request_url = first.url
        await world.emulator.send_command("/invoice", "check 11262")
        await settle(world, first)
        await world.emulator.click(world.emulator.number_of("Resync full integration"))
        await settle(world, first)
        await world.emulator.click(world.emulator.number_of("Resync anyway"))
        for _ in range(100):
            jobs = await first.container.jobs.unfinished()
            if jobs and jobs[0].portal_ref:
                break
            await asyncio.sleep(0.05)
        assert jobs and jobs[0].state is JobState.RUNNING
    # The first bot is gone mid-resync (its tasks cancelled); a new one starts.
    async with running_bot(settings) as second:
        world.emulator.request_url = second.url
        await settle(world, second)
        assert await second.container.jobs.unfinished() == []
    root = channel_messages(world)[0]
    texts = [str(m.blocks) for m in thread(world, root.ts)]
    assert "Fixed." in texts[-1]
    assert world.portal.request_count("POST", SYNCS) == 1
    assert "In sync" in str(root.blocks)


async def test_long_processed_lists_are_uploaded_as_a_file(
    world: SandboxWorld, bot: RunningBot
) -> None:
    since = (utcnow() - timedelta(days=70)).date()
    await world.emulator.send_command("/invoice", f"resync --since {since.isoformat()}")
    await confirm_full_resync(world, bot)
    root = channel_messages(world)[0]
    texts = [str(m.blocks) for m in thread(world, root.ts)]
    summary = next(t for t in texts if "Processed records" in t)
    assert "more" in summary
    [upload] = [f for f in world.emulator.state.files.values() if "records" in f.name]
    assert upload.thread_ts == root.ts and upload.name.endswith(".csv")
    lines = (upload.content or b"").decode().splitlines()
    assert lines[0] == "record_type,number,action,balance_before,balance_after"
    assert len(lines) - 1 > 250
    assert any(line.startswith("invoice,11262,updated,60.00,75.00") for line in lines)


async def test_slack_rate_limits_are_honoured(world: SandboxWorld, database_url: str) -> None:
    """With no pacing of our own, Slack's 429s (Retry-After) are waited out, nothing lost."""
    from sandbox.slack.api import RateLimit

    settings = world.bot_settings(
        database_url=database_url, resync_poll_seconds=0.3, slack_channel_interval_seconds=0
    )
    async with running_bot(settings) as bot:
        world.emulator.request_url = bot.url
        world.emulator.api.rate_limit = RateLimit(per_second=3, burst=3)
        await world.emulator.send_command("/invoice", "resync 11260")
        await settle(world, bot)
    limited = [c for c in world.emulator.state.calls if c.error == "ratelimited"]
    assert limited, "the emulator never rate limited: the test proves nothing"
    [root] = channel_messages(world)
    texts = [str(m.blocks) for m in thread(world, root.ts)]
    assert "Fixed." in texts[-1]
    assert "In sync" in str(root.blocks)


async def test_resync_command_refuses_to_hide_a_failed_portal_payment(
    world: SandboxWorld, bot: RunningBot
) -> None:
    await world.emulator.send_command("/invoice", "resync 11265")
    await settle(world, bot)
    assert channel_messages(world) == []
    assert world.portal.request_count("POST", RECORD_RESYNCS) == 0
    [question] = world.emulator.state.ephemerals(ALICE)
    assert "CB-4471" in str(question.blocks) and buttons(question) == ["Resync anyway"]
    audit = await bot.container.audit.recent()
    assert audit[0].outcome == "needs_acknowledgement" and "CB-4471" in audit[0].detail
