"""Fixes in QuickBooks end to end: alice prepares, bob approves, the bot writes once, and
QuickBooks, the portal and the check agree; self-approval and a changed payment refused."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from bot.demo import RunningBot, SandboxWorld, running_bot
from sandbox.qbo.payments import QboPayment
from sandbox.slack.state import ALICE, BOB
from services.fixes import ProposalState
from tests.e2e.conftest import FAST, buttons, channel_messages, settle, thread


def cb_4471(world: SandboxWorld) -> QboPayment:
    [payment] = [p for p in world.qbo.ledger.payments.values() if p.ref_num == "CB-4471"]
    return payment


def private_to(world: SandboxWorld, user: str) -> list[str]:
    messages = world.emulator.state.messages.values()
    return [m.text for m in messages if m.ephemeral_to == user]


async def propose(world: SandboxWorld, bot: RunningBot) -> str:
    """alice checks 11265 and prepares the fix; the proposal's root ts."""
    await world.emulator.send_command("/invoice", "check 11265", user=ALICE.id)
    await settle(world, bot)
    root = channel_messages(world)[-1]
    assert buttons(root)[-1] == "Prepare fix in QuickBooks"
    await world.emulator.click(world.emulator.number_of("Prepare fix"), user=ALICE.id)
    await settle(world, bot)
    return str(root.ts)


async def test_alice_proposes_bob_approves_and_it_is_fixed_once(
    world: SandboxWorld, bot: RunningBot
) -> None:
    root = await propose(world, bot)
    approve = world.emulator.number_of("Approve")
    await world.emulator.click(approve, user=BOB.id)
    await world.emulator.click(approve, user=BOB.id)  # a double click
    await settle(world, bot)

    invoice = world.qbo.invoice("11265")
    assert invoice.balance == Decimal("40.00")
    assert cb_4471(world).lines == [(invoice.id, Decimal("10.00"))]
    assert len(world.qbo.writes) == 1 and len(world.qbo.write_answers) == 1
    assert world.portal.invoices["11265"].balance == Decimal("40.00")
    assert [p.reference for p in world.portal.dismissed] == ["CB-4471"]
    said = [m.text for m in thread(world, root)]
    assert any("Proposed fix in QuickBooks" in t for t in said)
    assert any("Approved by <@U0BOB00001>" in t for t in said)
    assert any("Done in QuickBooks" in t and "in sync" in t and "intuit_tid 1-" in t for t in said)
    assert any("already approved" in t for t in private_to(world, BOB.id))
    audit = {(a.action, a.outcome) for a in await bot.container.audit.recent(limit=50)}
    assert {
        ("fix.propose", "proposed"),
        ("fix.approve", "approved"),
        ("fix.write", "written"),
        ("fix.apply", "done"),
    } <= audit
    [write] = [a for a in await bot.container.audit.recent(limit=50) if a.action == "fix.write"]
    assert re.search(r"requestid fix-\S+ intuit_tid 1-[0-9a-f]{8}-[0-9a-f]{24}$", write.detail)

    await world.emulator.send_command("/invoice", "check 11265", user=BOB.id)
    await settle(world, bot)
    check = json.dumps(channel_messages(world)[-1].blocks)
    assert "In sync" in check and "to account for" not in check


async def test_alice_cannot_approve_her_own_proposal(world: SandboxWorld, bot: RunningBot) -> None:
    await propose(world, bot)
    await world.emulator.click(world.emulator.number_of("Approve"), user=ALICE.id)
    await settle(world, bot)
    assert any("someone else must approve" in t for t in private_to(world, ALICE.id))
    assert world.qbo.writes == [] and world.qbo.invoice("11265").balance == Decimal("50.00")
    refused = [a for a in await bot.container.audit.recent() if a.action == "fix.approve"]
    assert [(a.actor, a.outcome) for a in refused] == [(ALICE.id, "refused")]


async def test_a_payment_changed_since_the_proposal_is_refused(
    world: SandboxWorld, bot: RunningBot
) -> None:
    root = await propose(world, bot)
    payment = cb_4471(world)
    world.qbo.update_payment(  # someone applies $5.00 of CB-4471 by hand in QuickBooks
        {
            "Id": payment.id,
            "SyncToken": str(payment.sync_token),
            "sparse": True,
            "Line": [
                {
                    "Amount": Decimal("5.00"),
                    "LinkedTxn": [{"TxnId": world.qbo.invoice("11265").id, "TxnType": "Invoice"}],
                }
            ],
        }
    )
    await world.emulator.click(world.emulator.number_of("Approve"), user=BOB.id)
    await settle(world, bot)

    said = [m.text for m in thread(world, root)]
    assert any("Not applied: payment CB-4471 was changed in QuickBooks" in t for t in said)
    assert world.qbo.writes == [] and world.qbo.invoice("11265").balance == Decimal("45.00")
    assert world.portal.dismissed == []


@asynccontextmanager
async def bot_with(
    world: SandboxWorld, database_url: str, approvers: list[str]
) -> AsyncIterator[RunningBot]:
    settings = world.bot_settings(database_url=database_url, **FAST, fix_approvers=approvers)
    async with running_bot(settings) as running:
        world.emulator.request_url = running.url
        yield running


async def test_approvers_by_user_group_and_outsiders_refused(
    world: SandboxWorld, database_url: str
) -> None:
    """FIX_APPROVERS=S0FINADMIN (alice's group): alice approves as a member; bob, outside
    it, is refused privately and audited."""
    async with bot_with(world, database_url, ["S0FINADMIN"]) as bot:
        await world.emulator.send_command("/invoice", "check 11266", user=BOB.id)
        await settle(world, bot)
        prepare = world.emulator.number_of("Prepare fix")
        await world.emulator.click(prepare, user=BOB.id)
        await world.emulator.click(prepare, user=BOB.id)  # a double click: one proposal
        await settle(world, bot)
        proposals = [m for m in channel_and_threads(world) if "Proposed fix" in m.text]
        assert len(proposals) == 1
        await world.emulator.click(world.emulator.number_of("Approve"), user=ALICE.id)
        await settle(world, bot)
        assert world.qbo.invoice("11266").balance == Decimal("100.00")  # CM-1042 applied
        memo = next(iter(world.qbo.ledger.credit_memos.values()))
        assert memo.remaining == Decimal(0) and len(world.qbo.writes) == 1

        await propose(world, bot)  # alice proposes 11265; bob is no approver
        await world.emulator.click(world.emulator.number_of("Approve"), user=BOB.id)
        await settle(world, bot)
        assert any("Only the people in FIX_APPROVERS" in t for t in private_to(world, BOB.id))
        assert len(world.qbo.writes) == 1
        refused = [a for a in await bot.container.audit.recent() if a.outcome == "refused"]
        assert [(a.actor, a.action) for a in refused] == [(BOB.id, "fix.approve")]


async def test_without_fix_approvers_the_feature_is_off_and_says_how(
    world: SandboxWorld, database_url: str
) -> None:
    async with bot_with(world, database_url, []) as bot:
        await world.emulator.send_command("/invoice", "check 11265", user=ALICE.id)
        await settle(world, bot)
        await world.emulator.click(world.emulator.number_of("Prepare fix"), user=ALICE.id)
        await settle(world, bot)
        assert any("set FIX_APPROVERS" in t for t in private_to(world, ALICE.id))
        assert not any("Proposed fix" in m.text for m in channel_and_threads(world))


def channel_and_threads(world: SandboxWorld) -> list[Any]:
    return [m for m in world.emulator.state.messages.values() if not m.ephemeral_to]


async def test_a_restart_mid_application_writes_once_and_says_it_once(
    world: SandboxWorld, database_url: str
) -> None:
    """The bot stopped after QuickBooks took the write but before it was recorded: the next
    start finishes the fix with the same requestid; one write, one outcome message."""
    settings = world.bot_settings(
        database_url=database_url, **FAST, replica_id="r1", fix_approvers=[ALICE.id, BOB.id]
    )
    async with running_bot(settings) as first:
        world.emulator.request_url = first.url
        root = await propose(world, first)
        fixes = first.container.fixes
        assert fixes is not None
        [proposal_id] = await _proposals(first)
        approved = await fixes.approve(proposal_id, user=BOB.id, allowed=True)
        writing = await fixes.records.move(
            proposal_id=approved.id,
            frm=(ProposalState.APPROVED,),
            to=ProposalState.WRITING,
            claim=True,
        )
        assert writing is not None and writing.fix.payment is not None
        await fixes.writer.apply_payment(  # QuickBooks took it; then the bot stopped
            writing.fix.payment,
            invoice_id=writing.fix.invoice_id,
            amount=writing.fix.amount,
            request_id=writing.request_id,
        )
    async with running_bot(settings) as second:
        world.emulator.request_url = second.url
        await settle(world, second)
    assert len(world.qbo.writes) == 1 and list(world.qbo.write_answers) == [writing.request_id]
    assert world.qbo.invoice("11265").balance == Decimal("40.00")
    done = [m for m in thread(world, root) if "Done in QuickBooks" in m.text]
    assert len(done) == 1 and writing.request_id in done[0].text


async def _proposals(bot: RunningBot) -> list[str]:
    rows = [a.detail for a in await bot.container.audit.recent() if a.action == "fix.propose"]
    return [detail.split()[1].rstrip(":") for detail in rows]
