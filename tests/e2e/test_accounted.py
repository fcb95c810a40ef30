"""An unexplained difference, once a resync took it out of view, can never be closed by
evidence: a person marks it accounted for, with a required reason, kept with who and when,
audited and shown in `/invoice history`. It closes that follow-up only."""

from __future__ import annotations

from typing import Any

from bot.demo import RunningBot, SandboxWorld
from tests.e2e.conftest import buttons, channel_messages, settle

ALICE = "U0ALICE001"


def exact(world: SandboxWorld, label: str) -> tuple[int, Any]:
    """The newest element labelled exactly ``label`` and its message."""
    emu = world.emulator
    for number in sorted(emu.state.elements_by_number, reverse=True):
        try:
            message, entry = emu.element(number)
        except Exception:  # gone, or someone else's
            continue
        if entry.label == label:
            return number, message
    raise AssertionError(f"no {label!r} shown")


async def test_mark_an_unexplained_difference_accounted_for(
    world: SandboxWorld, bot: RunningBot
) -> None:
    emu, store = world.emulator, bot.container.followups
    await emu.send_command("/invoice", "check 11269")
    await settle(world, bot)
    await emu.click(emu.number_of("Resync anyway"))
    await settle(world, bot)
    [followup] = await store.open_for(invoice="11269")
    assert followup.kind.value == "unexplained"

    await emu.send_command("/invoice", "check 11269")
    await settle(world, bot)
    root = channel_messages(world)[-1]
    [mark] = [b for b in buttons(root) if b.startswith("Mark accounted for")]
    await emu.click(emu.number_of(mark))
    await settle(world, bot)

    number, question = exact(world, "Mark accounted for")
    assert question.ephemeral_to == ALICE and "How is it accounted for?" in str(question.blocks)
    await emu.click(number)  # no reason typed: refused, nothing closed
    await settle(world, bot)
    assert "Say in a few words" in emu.state.ephemerals(ALICE)[-1].text
    assert [f.id for f in await store.open_for(invoice="11269")] == [followup.id]

    key = (question.ts, "accounted_reason", "accounted_reason")  # typing into the input
    emu.state.selections[key] = {"type": "plain_text_input", "value": " Refunded by card, T-4411 "}
    await emu.click(number)
    await settle(world, bot)
    assert await store.open_for(invoice="11269") == []
    [closed] = await store.closed_by_hand()
    assert closed.id == followup.id and closed.closed_by == ALICE and closed.closed_at
    assert closed.closed_because == "marked accounted for: Refunded by card, T-4411"
    assert "marked accounted for by" in emu.state.messages[question.ts].text
    audit = [a for a in await bot.container.audit.recent() if a.action == "followup_accounted"]
    assert [(a.actor, a.target, a.outcome) for a in audit] == [(ALICE, "11269", "closed")]

    await emu.send_command("/invoice", "history")
    await settle(world, bot)
    history = emu.state.ephemerals(ALICE)[-1]
    assert "Marked accounted for by hand" in str(history.blocks)
    assert "Refunded by card, T-4411" in str(history.blocks)


async def test_money_the_evidence_can_settle_has_no_such_button(
    world: SandboxWorld, bot: RunningBot
) -> None:
    emu = world.emulator
    await emu.send_command("/invoice", "check 11265")  # a failed portal payment
    await settle(world, bot)
    await emu.click(emu.number_of("Resync anyway"))
    await settle(world, bot)
    assert [f.kind.value for f in await bot.container.followups.open_for(invoice="11265")] == [
        "failed_payment"
    ]
    await emu.send_command("/invoice", "check 11265")
    await settle(world, bot)
    assert not [b for b in buttons(channel_messages(world)[-1]) if "accounted" in b]
