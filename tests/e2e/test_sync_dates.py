"""A full resync from before the integration existed (the portal's `connected_at`, contract
1.2) is refused privately with the reason, from a typed command and from the date picker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.demo import RunningBot, SandboxWorld
from sandbox.scenarios import CONNECTED_AGO
from tests.e2e.conftest import channel_messages, settle

ALICE = "U0ALICE001"
SYNCS = "/api/v1/integrations/int-qbo-1/syncs"


async def test_a_date_before_the_integration_existed_is_refused_with_the_reason(
    world: SandboxWorld, bot: RunningBot
) -> None:
    connected = (datetime.now(UTC) - CONNECTED_AGO).date()
    for since in ("1900-01-01", (connected - timedelta(days=1)).isoformat()):
        await world.emulator.send_command("/invoice", f"resync --since {since}")
        await settle(world, bot)
    assert channel_messages(world) == []
    old, day_before = world.emulator.state.ephemerals(ALICE)
    for answer in (old, day_before):
        assert "was connected to the portal on" in answer.text
        assert f"Pick {connected.isoformat()} or later" in answer.text
    assert world.portal.request_count("POST", SYNCS) == 0


async def test_the_connect_day_itself_is_asked_about_as_long_ago(
    world: SandboxWorld, bot: RunningBot
) -> None:
    connected = (datetime.now(UTC) - CONNECTED_AGO).date() + timedelta(days=1)
    await world.emulator.send_command("/invoice", f"resync --since {connected.isoformat()}")
    await settle(world, bot)
    [question] = world.emulator.state.ephemerals(ALICE)
    assert "was connected" not in question.text
    assert world.portal.request_count("POST", SYNCS) == 0  # a question first, nothing run
