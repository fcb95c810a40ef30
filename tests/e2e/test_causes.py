"""Every seeded cause of a discrepancy, diagnosed end to end through Slack: the check names
the cause, shows the evidence, and offers only the fix that works."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from bot.demo import RunningBot, SandboxWorld
from commands.cause_blocks import CAUSE_TITLES
from sandbox.portal.payments import take_payment
from sandbox.scenarios import Scenario, scenarios
from services.causes import Cause
from tests.e2e.conftest import buttons, channel_messages, settle, thread

PLAIN = ["Resync invoice", "Resync full integration"]
FIX = "Prepare fix in QuickBooks"


def expected_buttons(s: Scenario) -> list[str]:
    if s.story is not None and s.story.portal_payments:  # a resync would hide a payment
        return ["Resync anyway", FIX]
    return {
        "stale_copy": PLAIN,
        "invoice_voided": PLAIN,
        "invoice_recreated": ["Resync full integration"],  # a record resync follows the old link
        # behind "fixed in QuickBooks first?" (the guard re-checks), or acknowledged
        "credit_not_applied": ["Resync invoice", "Resync anyway", FIX],
        "rounding": [],
        "unknown": ["Resync anyway"],
    }[s.cause]


def action_elements(message: Any) -> list[dict[str, Any]]:
    return [e for b in message.blocks if b.get("type") == "actions" for e in b["elements"]]


async def check(world: SandboxWorld, bot: RunningBot, number: str) -> Any:
    await world.emulator.send_command("/invoice", f"check {number}")
    await settle(world, bot)
    return channel_messages(world)[-1]


async def test_every_seeded_scenario_is_diagnosed_in_slack(
    world: SandboxWorld, bot: RunningBot
) -> None:
    wrong = []
    for s in scenarios():
        root = await check(world, bot, s.number)
        text = json.dumps(root.blocks)
        title = CAUSE_TITLES[Cause(s.cause)]
        if f"Cause: {title}*" not in text:
            wrong.append(f"{s.number}: expected the cause {title!r}")
        if buttons(root) != expected_buttons(s):
            wrong.append(f"{s.number} ({s.cause}): buttons {buttons(root)}")
    assert wrong == []
    audit = await bot.container.audit.recent(limit=20)
    assert {(a.target, a.detail) for a in audit if a.action == "check"} == {
        (s.number, s.cause) for s in scenarios()
    }
    failed_payment_shows_its_evidence_and_steps(world)


def failed_payment_shows_its_evidence_and_steps(world: SandboxWorld) -> None:
    [root] = [m for m in channel_messages(world) if "Invoice 11265" in m.text]
    text = json.dumps(root.blocks)
    paid = world.portal.payments["11265"][0].paid_at
    assert (
        f"Portal payment CB-4471 of $10.00 on {paid:%b %d} failed to post to QuickBooks: "
        "Duplicate reference: QuickBooks already has payment CB-4471 (Id 9471)"
    ) in text
    assert "In QuickBooks, apply payment CB-4471 to invoice 11265." in text
    anyway, _ = action_elements(root)
    assert anyway["style"] == "danger" and anyway["confirm"]["style"] == "danger"
    confirm = anyway["confirm"]["text"]["text"]
    assert "The portal will show QuickBooks' $50.00 in place of $40.00" in confirm
    assert (
        "Out of view, kept as follow-ups until accounted for: portal payment CB-4471 of "
        "$10.00 (failed to post)"
    ) in confirm


async def test_resync_anyway_resyncs_and_is_in_the_audit_log(
    world: SandboxWorld, bot: RunningBot
) -> None:
    root = await check(world, bot, "11265")
    await world.emulator.click(world.emulator.number_of("Resync anyway"))
    await settle(world, bot)
    root = channel_messages(world)[0]
    assert buttons(root) == [FIX]  # for the money still apart (tests/e2e/test_fix_owed.py)
    assert world.portal.invoices["11265"].balance == Decimal("50.00")
    assert world.portal.payments["11265"][0].transfer_status == "failed"  # still on record
    actions = [(a.action, a.target, a.outcome) for a in await bot.container.audit.recent()]
    assert ("resync_anyway", "11265", "confirmed") in actions
    # Balances match, but the money is not accounted for: never a bare "Fixed.".
    said = [json.dumps(m.blocks) for m in thread(world, root.ts)]
    assert not any("Fixed." in t for t in said)
    assert "CB-4471 ($10.00) is still to account for in QuickBooks" in said[-1]
    assert "Balances match" in json.dumps(root.blocks) and "In sync" not in json.dumps(root.blocks)
    [followup] = await bot.container.followups.open_for(invoice="11265")
    assert (followup.reference, followup.amount, followup.acknowledged_by) == (
        "CB-4471",
        Decimal("10.00"),
        "U0ALICE001",
    )
    # Every later check still shows it, and so does the next digest, first.
    again = await check(world, bot, "11265")
    assert "Money still to account for" in json.dumps(again.blocks)
    assert "CB-4471" in json.dumps(again.blocks)
    await world.emulator.send_command("/invoice", "digest")
    await settle(world, bot)
    digest = channel_messages(world)[-1]
    assert "Money still to account for: $10.00" in json.dumps(digest.blocks)
    assert "CB-4471" in json.dumps(thread(world, digest.ts)[0].blocks)


async def test_resync_anyway_on_a_recreated_invoice_runs_the_full_resync(
    world: SandboxWorld, bot: RunningBot
) -> None:
    await check(world, bot, "11267")
    await world.emulator.click(world.emulator.number_of("Resync anyway"))
    await settle(world, bot)
    # The full resync from that date also re-reads 11266 (its credit would drop out of
    # view): the guard names it and asks again; nothing has started.
    assert world.portal.request_count("POST", "/api/v1/integrations/") == 0
    question = world.emulator.state.ephemerals("U0ALICE001")[-1]
    assert "CM-1042" in json.dumps(question.blocks) and "CB-4502" in json.dumps(question.blocks)
    await world.emulator.click(world.emulator.number_of("Resync anyway"))
    await settle(world, bot)
    assert world.portal.request_count("POST", "/api/v1/integrations/") == 1
    assert world.portal.request_count("POST", "/api/v1/record-resyncs") == 0
    relinked = world.portal.invoices["11267"]
    assert relinked.external_id == world.qbo.invoice("11267").id
    assert relinked.balance == Decimal("90.00")


async def test_a_payment_qbo_refuses_changes_the_diagnosis(
    world: SandboxWorld, bot: RunningBot
) -> None:
    before = await check(world, bot, "11264")
    assert buttons(before) == PLAIN  # a stale copy
    await take_payment(world.portal, "11264", Decimal("10.00"), reference="CB-5001")
    after = await check(world, bot, "11264")
    text = json.dumps(after.blocks)
    assert "Cause: Payment failed to transfer*" in text
    assert "Portal payment CB-5001 of $10.00 on" in text
    assert "failed to post to QuickBooks: Invoice already paid" in text
    assert buttons(after) == ["Resync anyway"]  # an overpayment: no fix to prepare


async def test_the_root_keeps_the_right_buttons_after_a_resync_that_did_not_fix_it(
    world: SandboxWorld, bot: RunningBot
) -> None:
    """A client pays while the record resync runs and QBO refuses the payment: the resync
    ends still out of sync, and the root it re-renders offers no plain resync."""
    by_hand = {"CustomerRef": {"value": "58"}, "TotalAmt": Decimal("5.00"), "Line": []}
    world.qbo.receive_payment({**by_hand, "PaymentRefNum": "CB-7000"})  # the transfer will clash
    world.portal.record_resync_seconds = 1.0
    await check(world, bot, "11260")
    await world.emulator.click(world.emulator.number_of("Resync invoice"))
    async with asyncio.timeout(10):
        while world.portal.invoices["11260"].balance != Decimal("50.00"):  # resync applied
            await asyncio.sleep(0.02)
    paid = await take_payment(world.portal, "11260", Decimal("5.00"), reference="CB-7000")
    assert paid.transfer_status == "failed"
    await settle(world, bot)
    root = channel_messages(world)[0]
    text = json.dumps(root.blocks)
    assert "Checked again after a record resync" in text
    assert "Cause: Payment failed to transfer*" in text
    assert buttons(root) == ["Resync anyway", FIX]
