"""Two replicas fire the scheduled digest at the same moment: one digest is posted."""

from __future__ import annotations

import asyncio

from bot.demo import SandboxWorld, running_bot
from bot.flows.digest import scheduled_digest
from tests.e2e.conftest import FAST, channel_messages


async def test_one_scheduled_digest_among_replicas(world: SandboxWorld, database_url: str) -> None:
    settings = world.bot_settings(database_url=database_url, digest_channel="C0FINANCE1", **FAST)
    async with running_bot(settings) as first, running_bot(settings) as second:
        assert first.container.replica != second.container.replica
        runs = await asyncio.gather(
            scheduled_digest(first.container), scheduled_digest(second.container)
        )
        assert sum(run is not None for run in runs) == 1
        again = await scheduled_digest(second.container)
        assert again is None  # the day's digest is done
    summaries = [m for m in channel_messages(world) if "digest" in m.text.lower()]
    assert len(summaries) == 1
