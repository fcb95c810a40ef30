"""End-to-end: the real bolt app over HTTP, the sandbox systems, the Slack emulator.
The ``database_url`` fixture (tests/conftest.py) honours TEST_DATABASE_URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.demo import RunningBot, SandboxWorld, running_bot, sandbox_world
from sandbox.slack.actions import ClickError
from tests.databases import create_database


async def fresh_database_url(tmp_path: Path) -> str:
    """SQLite in a temporary folder, or a fresh database on TEST_DATABASE_URL (dropped at the
    end of the session). The ``database_url`` fixture (tests/conftest.py) drops it at once."""
    return await create_database(tmp_path)


FAST: dict[str, Any] = {
    "resync_poll_seconds": 0.05,
    "slack_channel_interval_seconds": 0.02,
    "qbo_max_retry_wait_seconds": 0.5,
    "portal_max_retry_wait_seconds": 0.5,
}


@pytest.fixture
async def world() -> AsyncIterator[SandboxWorld]:
    async with sandbox_world(sync_seconds=0.3, record_resync_seconds=0.1) as w:
        yield w


@pytest.fixture
async def bot(world: SandboxWorld, database_url: str) -> AsyncIterator[RunningBot]:
    settings = world.bot_settings(database_url=database_url, **FAST)
    async with running_bot(settings) as running:
        world.emulator.request_url = running.url
        yield running


async def settle(world: SandboxWorld, bot: RunningBot) -> None:
    settled = await world.emulator.wait_for_quiet(
        quiet=0.15, timeout=30, is_busy=lambda: bot.container.tasks.busy
    )
    assert settled, "the bot did not settle within 30 s"


def channel_messages(world: SandboxWorld) -> list[Any]:
    return [m for m in world.emulator.state.history("C0FINANCE1") if not m.ephemeral_to]


def thread(world: SandboxWorld, root_ts: str) -> list[Any]:
    return world.emulator.state.replies("C0FINANCE1", root_ts)


def _words(message: Any) -> str:
    """A message's text, then the text in its blocks (where the reasons are), buttons aside."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "actions":
                return
            text = node.get("text")
            if isinstance(text, str):
                found.append(text)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.blocks)
    return " | ".join([message.text, *(t for t in found if t != message.text)])


def conversation(world: SandboxWorld, root_ts: str) -> str:
    """What the bot said in the thread of ``root_ts`` and privately to anyone, in order: a
    failing assertion's message, so the failure says what the bot told the people."""
    lines = [f"in the thread: {_words(m)}" for m in thread(world, root_ts)]
    lines += [
        f"privately to {m.ephemeral_to}: {_words(m)}"
        for m in world.emulator.state.messages.values()
        if m.ephemeral_to
    ]
    return "what the bot said:\n" + "\n".join(lines)


def buttons(message: Any) -> list[str]:
    return [
        e.get("text", {}).get("text", "")
        for b in message.blocks
        if b.get("type") == "actions"
        for e in b.get("elements", [])
        if e.get("type") == "button"
    ]


async def confirm_full_resync(
    world: SandboxWorld, bot: RunningBot, *, user: str | None = None
) -> None:
    """Answer the private question a typed full resync gets first: **Start full resync**, or
    **Resync anyway** when the guard named money the run would take out of view."""
    await settle(world, bot)
    emu = world.emulator
    try:
        number = emu.number_of("Start full resync")
    except ClickError:
        number = emu.number_of("Resync anyway")
    await emu.click(number, user=user)
    await settle(world, bot)


async def press_guard_question(emu: Any, *, timeout: float = 10.0) -> None:
    """Wait for the guard's private question (a bot in another process), then press its
    **Start full resync** or **Resync anyway**."""
    import asyncio

    async with asyncio.timeout(timeout):
        while True:
            for label in ("Start full resync", "Resync anyway"):
                try:
                    number = emu.number_of(label)
                except ClickError:
                    continue
                message, _ = emu.element(number)
                if message.ephemeral_to is not None:
                    await emu.click(number)
                    return
            await asyncio.sleep(0.02)
