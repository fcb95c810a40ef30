"""An unexplained difference, once a resync took it out of view, can never be closed by
evidence: a person marks it accounted for, with a required reason, kept with who and when,
audited and shown in `/invoice history`. It closes that follow-up only."""

from __future__ import annotations

from typing import Any

from bot.demo import RunningBot, SandboxWorld, running_bot
from tests.e2e.conftest import FAST, buttons, channel_messages, settle

ALICE, BOB = "U0ALICE001", "U0BOB00001"


def exact(world: SandboxWorld, label: str, user: str | None = None) -> tuple[int, Any]:
    """The newest element labelled exactly ``label`` (that ``user`` sees) and its message."""
    emu = world.emulator
    for number in sorted(emu.state.elements_by_number, reverse=True):
        try:
            message, entry = emu.element(number, user=user)
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
    # Alice acknowledged hiding it: not on her word. Told privately who can.
    await emu.click(emu.number_of(mark))
    await settle(world, bot)
    refusal = emu.state.ephemerals(ALICE)[-1]
    assert "You acknowledged" in refusal.text and f"<@{BOB}>" in refusal.text
    assert [f.id for f in await store.open_for(invoice="11269")] == [followup.id]

    await emu.click(emu.number_of(mark), user=BOB)  # Bob, an approver (FIX_APPROVERS)
    await settle(world, bot)
    number, question = exact(world, "Mark accounted for", user=BOB)
    assert question.ephemeral_to == BOB and "How is it accounted for?" in str(question.blocks)
    await emu.click(number, user=BOB)  # no reason typed: refused, nothing closed
    await settle(world, bot)
    assert "Say in a few words" in emu.state.ephemerals(BOB)[-1].text
    assert [f.id for f in await store.open_for(invoice="11269")] == [followup.id]

    key = (question.ts, "accounted_reason", "accounted_reason")  # typing into the input
    emu.state.selections[key] = {"type": "plain_text_input", "value": " Refunded by card, T-4411 "}
    await emu.click(number, user=BOB)
    await settle(world, bot)
    assert await store.open_for(invoice="11269") == []
    [closed] = await store.closed_by_hand()
    assert closed.id == followup.id and closed.closed_by == BOB and closed.closed_at
    assert closed.closed_because == "marked accounted for: Refunded by card, T-4411"
    assert "marked accounted for by" in emu.state.messages[question.ts].text
    audit = [a for a in await bot.container.audit.recent() if a.action == "followup_accounted"]
    assert sorted((a.actor, a.target, a.outcome) for a in audit) == [
        (ALICE, "11269", "refused"),
        (BOB, "11269", "closed"),
    ]

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


async def test_with_approvers_named_nobody_else_may_close_it(
    world: SandboxWorld, database_url: str
) -> None:
    settings = world.bot_settings(database_url=database_url, fix_approvers=[ALICE], **FAST)
    async with running_bot(settings) as bot:
        emu, store = world.emulator, bot.container.followups
        emu.request_url = bot.url
        await emu.send_command("/invoice", "check 11269")
        await settle(world, bot)
        await emu.click(emu.number_of("Resync anyway"))
        await settle(world, bot)
        [followup] = await store.open_for(invoice="11269")
        await emu.send_command("/invoice", "check 11269")
        await settle(world, bot)
        [mark] = [b for b in buttons(channel_messages(world)[-1]) if b.startswith("Mark")]
        await emu.click(emu.number_of(mark), user=BOB)  # not an approver
        await settle(world, bot)
        refusal = emu.state.ephemerals(BOB)[-1]
        assert "Only the approvers" in refusal.text and f"<@{ALICE}>" in refusal.text
        assert "How is it accounted for?" not in str(refusal.blocks)
        assert [f.id for f in await store.open_for(invoice="11269")] == [followup.id]
