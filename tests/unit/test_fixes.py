"""Fixes in QuickBooks: prepared from the evidence, approved by a second person, applied
once after re-reading everything (in-memory fakes of the ports)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from services.causes import AtRisk, RiskKind
from services.diagnosis import diagnose
from services.errors import ClosedPeriodError, NotAllowedError
from services.fixes import Decision, Fix, FixKind, FixService, NoFix, ProposalState, prepare_fix
from services.models import TransferStatus
from tests.diagnosis_support import (
    NOW,
    acct,
    comparison,
    credit_memo,
    evidence,
    mirror,
    portal_payment,
    qbo_payment,
)
from tests.unit.fakes import FakeAccounting, FakePortal, FakeWriter, MemoryFollowUps, World
from tests.unit.fix_fakes import MemoryAudit, MemoryFixRecords

DUPLICATE = "QuickBooks refused: Duplicate Document Number Error"
ALICE, BOB, CAROL = "U0ALICE001", "U0BOB00002", "U0CAROL003"


def failed_duplicate_world() -> World:
    """11265: the client's $10.00 (CB-4471) failed to transfer; entered by hand, unapplied."""
    held = qbo_payment("CB-4471", "10.00", unapplied="10.00").model_copy(update={"sync_token": "0"})
    return World(
        acct=acct("50.00"),
        portal=mirror("40.00"),
        portal_payments=[
            portal_payment("CB-4471", "10.00", TransferStatus.FAILED, error=DUPLICATE)
        ],
        qbo_payments=[held],
    )


def fix_of(world: World) -> Fix | NoFix:
    ev = evidence(
        comparison(world.acct, world.portal),
        payments=tuple(world.qbo_payments),
        credit_memos=tuple(world.memos),
        portal_payments=tuple(world.portal_payments),
    )
    return prepare_fix(ev, diagnose(ev))


def service(world: World) -> tuple[FixService, MemoryFixRecords, MemoryAudit, FakeWriter]:
    records, audit, writer = MemoryFixRecords(), MemoryAudit(), FakeWriter(world)
    fixes = FixService(
        accounting=FakeAccounting(world),
        writer=writer,
        portal=FakePortal(world),
        records=records,
        followups=MemoryFollowUps(),
        audit=audit,
        clock=lambda: NOW,
    )
    return fixes, records, audit, writer


def test_a_failed_duplicate_transfer_gets_the_hand_entered_payment_applied() -> None:
    fix = fix_of(failed_duplicate_world())
    assert isinstance(fix, Fix)
    assert fix.kind is FixKind.APPLY_PAYMENT and fix.amount == Decimal("10.00")
    assert fix.dismiss is not None and fix.dismiss.reference == "CB-4471"
    assert (fix.qbo_before, fix.qbo_after, fix.portal_before) == (
        Decimal("50.00"),
        Decimal("40.00"),
        Decimal("40.00"),
    )
    assert any("`UnappliedAmt` $10.00 → $0.00" in line for line in fix.changes())


def test_a_credit_not_applied_gets_the_credit_memo_applied() -> None:
    world = World(acct=acct("120.00", total="120.00"), portal=mirror("100.00"))
    world.memos = [credit_memo("20.00")]
    fix = fix_of(world)
    assert isinstance(fix, Fix)
    assert fix.kind is FixKind.APPLY_CREDIT and fix.amount == Decimal("20.00")
    assert fix.memo is not None and fix.memo.number == "CM-1042" and fix.dismiss is None


def test_an_overpayment_and_an_unknown_difference_get_no_fix() -> None:
    paid = failed_duplicate_world()
    paid.acct = acct("0.00")
    paid.portal_payments = [
        portal_payment("CB-4471", "10.00", TransferStatus.FAILED, error="already paid")
    ]
    overpaid = fix_of(paid)
    assert isinstance(overpaid, NoFix) and "overpayment" in overpaid.reason
    unknown = fix_of(World(acct=acct("140.00", total="140.00"), portal=mirror("155.00")))
    assert isinstance(unknown, NoFix) and "will not guess" in unknown.reason


async def test_proposed_by_one_approved_by_another_applied_once() -> None:
    world = failed_duplicate_world()
    fixes, _records, audit, _writer = service(world)
    risk = AtRisk(kind=RiskKind.FAILED_PAYMENT, reference="CB-4471", amount=Decimal("10"), what="x")
    await fixes.followups.open(invoice="11265", risk=risk, acknowledged_by=ALICE, job_id=None)

    proposal = await fixes.propose("11265", user=ALICE, channel="C1", thread_ts="1.1")
    assert not isinstance(proposal, NoFix)
    with pytest.raises(Decision, match="someone else must approve"):
        await fixes.approve(proposal.id, user=ALICE, allowed=True)
    with pytest.raises(NotAllowedError):
        await fixes.approve(proposal.id, user=CAROL, allowed=False)
    approved = await fixes.approve(proposal.id, user=BOB, allowed=True)
    with pytest.raises(Decision, match="already approved by <@U0BOB00002>"):
        await fixes.approve(proposal.id, user=CAROL, allowed=True)  # the second click
    result = await fixes.apply(approved)

    assert result.proposal.state is ProposalState.DONE
    assert world.qbo_writes == [proposal.request_id] and world.dismissed == ["pay-CB-4471"]
    assert world.acct.balance == Decimal("40.00") and not result.needs_resync
    assert result.followups == ()  # CB-4471 accounted for: its follow-up closed
    assert audit.outcomes("fix.approve") == ["refused", "refused", "approved"]
    assert audit.outcomes("fix.write") == ["written"]
    assert "requestid fix-p1" in audit.entries[-2]["detail"]


async def test_a_payment_changed_since_the_proposal_is_refused_and_nothing_written() -> None:
    world = failed_duplicate_world()
    fixes, _records, audit, _writer = service(world)
    proposal = await fixes.propose("11265", user=ALICE, channel="C1", thread_ts="1.1")
    assert not isinstance(proposal, NoFix)
    moved = world.qbo_payments[0].model_copy(
        update={"sync_token": "1", "last_updated": NOW - timedelta(minutes=5)}
    )
    world.qbo_payments = [moved]  # someone edited CB-4471 in QuickBooks

    result = await fixes.apply(await fixes.approve(proposal.id, user=BOB, allowed=True))

    assert result.proposal.state is ProposalState.REFUSED
    assert "payment CB-4471 was changed in QuickBooks" in (result.proposal.detail or "")
    assert world.qbo_writes == [] and world.dismissed == []
    assert audit.outcomes("fix.apply") == ["refused"]


async def test_a_resumed_application_writes_once_with_the_same_requestid() -> None:
    world = failed_duplicate_world()
    fixes, records, _audit, writer = service(world)
    proposal = await fixes.propose("11265", user=ALICE, channel="C1", thread_ts="1.1")
    assert not isinstance(proposal, NoFix)
    approved = await fixes.approve(proposal.id, user=BOB, allowed=True)
    writing = await records.move(
        proposal_id=approved.id, frm=(ProposalState.APPROVED,), to=ProposalState.WRITING
    )
    assert writing is not None
    await writer.apply_payment(  # the write reached QuickBooks, then the worker died
        writing.fix.payment,  # type: ignore[arg-type]
        invoice_id=writing.fix.invoice_id,
        amount=writing.fix.amount,
        request_id=writing.request_id,
    )

    results = await fixes.resume_due()

    assert [r.proposal.state for r in results] == [ProposalState.DONE]
    assert world.qbo_writes == [proposal.request_id]
    assert world.acct.balance == Decimal("40.00")


async def test_an_expired_proposal_says_so_and_changes_nothing() -> None:
    world = failed_duplicate_world()
    fixes, records, _audit, _writer = service(world)
    proposal = await fixes.propose("11265", user=ALICE, channel="C1", thread_ts="1.1")
    assert not isinstance(proposal, NoFix)
    fixes.clock = lambda: NOW + timedelta(hours=25)
    with pytest.raises(Decision, match="expired"):
        await fixes.approve(proposal.id, user=BOB, allowed=True)
    assert records.rows[proposal.id].state is ProposalState.EXPIRED
    assert world.qbo_writes == []


async def test_quickbooks_refusals_are_said_in_words_and_leave_everything() -> None:
    world = failed_duplicate_world()
    fixes, _, audit, writer = service(world)
    writer.fail_with = ClosedPeriodError(
        "Account Period Closed", system="QuickBooks Online", status=400, code="6200"
    )
    proposal = await fixes.propose("11265", user=ALICE, channel="C1", thread_ts="1.1")
    assert not isinstance(proposal, NoFix)
    result = await fixes.apply(await fixes.approve(proposal.id, user=BOB, allowed=True))
    assert result.proposal.state is ProposalState.REFUSED
    assert "closed accounting period" in (result.proposal.detail or "")
    assert world.qbo_writes == [] and world.dismissed == []
    assert world.acct.balance == Decimal("50.00")
    assert "QuickBooks code 6200" in audit.entries[-1]["detail"]


async def test_a_portal_still_apart_after_the_fix_asks_for_a_resync() -> None:
    """The portal showed $45.00 (stale as well): after the fix QuickBooks says $40.00, so
    the record wants a resync (the bot starts it through the runner and its guard)."""
    world = failed_duplicate_world()
    world.portal = mirror("45.00")
    world.portal_payments[0] = world.portal_payments[0].model_copy(
        update={"amount": Decimal("10.00")}
    )
    fixes, _, _, _ = service(world)
    proposal = await fixes.propose("11265", user=ALICE, channel="C1", thread_ts="1.1")
    assert not isinstance(proposal, NoFix)
    result = await fixes.apply(await fixes.approve(proposal.id, user=BOB, allowed=True))
    assert result.proposal.state is ProposalState.DONE and result.needs_resync
    assert world.writes == []  # the fix service itself never writes to the portal record


async def test_an_expired_proposal_makes_way_for_a_new_one() -> None:
    world = failed_duplicate_world()
    fixes, records, _, _ = service(world)
    first = await fixes.propose("11265", user=ALICE, channel="C1", thread_ts="1.1")
    again = await fixes.propose("11265", user=BOB, channel="C1", thread_ts="1.1")
    assert not isinstance(first, NoFix) and not isinstance(again, NoFix)
    assert again.id == first.id  # still open: the same proposal
    fixes.clock = lambda: NOW + timedelta(hours=25)
    fresh = await fixes.propose("11265", user=BOB, channel="C1", thread_ts="1.1")
    assert not isinstance(fresh, NoFix) and fresh.id != first.id
    assert records.rows[first.id].state is ProposalState.EXPIRED


async def test_reject_is_open_to_the_proposer_and_the_approvers_only() -> None:
    world = failed_duplicate_world()
    fixes, _, audit, _ = service(world)
    proposal = await fixes.propose("11265", user=ALICE, channel="C1", thread_ts="1.1")
    assert not isinstance(proposal, NoFix)
    with pytest.raises(NotAllowedError):
        await fixes.reject(proposal.id, user=CAROL, allowed=False)
    rejected = await fixes.reject(proposal.id, user=ALICE, allowed=False)  # her own
    assert rejected.state is ProposalState.REJECTED and rejected.decided_by == ALICE
    with pytest.raises(Decision, match="rejected by <@U0ALICE001>"):
        await fixes.approve(proposal.id, user=BOB, allowed=True)
    assert world.qbo_writes == [] and audit.outcomes("fix.reject") == ["refused", "rejected"]


async def test_the_sweep_expires_proposals_past_their_hours() -> None:
    world = failed_duplicate_world()
    fixes, records, audit, _ = service(world)
    proposal = await fixes.propose("11265", user=ALICE, channel="C1", thread_ts="1.1")
    assert not isinstance(proposal, NoFix)
    assert await fixes.expire_due() == []
    fixes.clock = lambda: NOW + timedelta(hours=24)
    assert [p.id for p in await fixes.expire_due()] == [proposal.id]
    assert await fixes.expire_due() == []  # once
    assert records.rows[proposal.id].state is ProposalState.EXPIRED
    assert audit.outcomes("fix.expire") == ["expired"]
