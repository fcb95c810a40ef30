"""`/invoice check` and `/invoice help` through signed HTTP requests to the real bolt app."""

from __future__ import annotations

import pytest

from bot.demo import RunningBot, SandboxWorld
from sandbox.slack.signing import Signing
from tests.e2e.conftest import buttons, channel_messages, settle

ALICE = "U0ALICE001"


async def test_check_posts_both_balances_and_a_verdict(
    world: SandboxWorld, bot: RunningBot
) -> None:
    reply = await world.emulator.send_command("/invoice", "check 11260")
    assert reply.status == 200
    await settle(world, bot)
    [root] = channel_messages(world)
    text = world.emulator.transcript()
    assert "Invoice 11260 · Best Tackle" in text
    assert "$50.00" in text and "$40.00" in text
    assert "Out of sync by $10.00" in text
    assert buttons(root) == ["Resync invoice", "Resync full integration"]
    audit = await bot.container.audit.recent()
    assert [(a.actor, a.action, a.target, a.outcome) for a in audit] == [
        (ALICE, "check", "11260", "mismatch")
    ]


async def test_check_in_sync_and_missing(world: SandboxWorld, bot: RunningBot) -> None:
    await world.emulator.send_command("/invoice", "check 11003")
    await settle(world, bot)
    await world.emulator.send_command("/invoice", "check 11263")
    await settle(world, bot)
    in_sync, missing = channel_messages(world)
    assert "In sync" in str(in_sync.blocks) and buttons(in_sync) == []
    assert "Missing in the portal" in str(missing.blocks)
    assert buttons(missing) == ["Resync invoice", "Resync full integration"]


async def test_unknown_invoice_is_answered_privately(world: SandboxWorld, bot: RunningBot) -> None:
    await world.emulator.send_command("/invoice", "check 99999")
    await settle(world, bot)
    assert channel_messages(world) == []
    [private] = world.emulator.state.ephemerals(ALICE)
    assert "neither QuickBooks Online nor the portal" in private.text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "check",
        "check abc",
        "check 11260 11261",
        "frobnicate",
        "check " + "9" * 5000,
        "check payload",
        "payload",
    ],
)
async def test_malformed_input_gets_private_usage_and_touches_nothing(
    world: SandboxWorld, bot: RunningBot, text: str
) -> None:
    qbo_before = sum(world.qbo.request_counts.values())
    portal_before = sum(world.portal.requests.values())
    reply = await world.emulator.send_command("/invoice", text)
    await settle(world, bot)
    assert reply.status == 200
    assert channel_messages(world) == []
    [private] = world.emulator.state.ephemerals(ALICE)
    assert "Usage" in str(private.blocks)
    assert sum(world.qbo.request_counts.values()) == qbo_before
    assert sum(world.portal.requests.values()) == portal_before
    assert await bot.container.audit.recent() == []


async def test_help_is_private(world: SandboxWorld, bot: RunningBot) -> None:
    await world.emulator.send_command("/invoice", "help")
    await settle(world, bot)
    assert channel_messages(world) == []
    [private] = world.emulator.state.ephemerals(ALICE)
    assert "/invoice check NUMBER" in str(private.blocks)


@pytest.mark.parametrize("signing", [Signing(stale=True), Signing(wrong_signature=True)])
async def test_bad_or_stale_signature_is_refused(
    world: SandboxWorld, bot: RunningBot, signing: Signing
) -> None:
    reply = await world.emulator.send_command("/invoice", "check 11260", signing=signing)
    await settle(world, bot)
    assert reply.status == 401
    assert channel_messages(world) == []
    assert sum(world.qbo.request_counts.values()) == 0
    assert sum(world.portal.requests.values()) == 0


async def test_check_acks_before_the_work(world: SandboxWorld, bot: RunningBot) -> None:
    """The ack comes back at once even when both systems are slow."""
    world.qbo.knobs.latency = 1.0
    world.portal.latency = 1.0
    reply = await world.emulator.send_command("/invoice", "check 11260")
    assert reply.status == 200 and reply.error is None
    assert channel_messages(world) == []  # not yet: the work runs after the ack
    await settle(world, bot)
    assert len(channel_messages(world)) == 1
