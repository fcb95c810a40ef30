"""A fix for money still to account for after a resync anyway (the balances match, the
payment or credit is still apart in QuickBooks), and Prepare fix shown only where a fix can
be prepared (in-memory fakes of the ports; the Block Kit built purely)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from commands.blocks import check_message
from commands.digest_blocks import followups_message
from services.causes import AtRisk, RiskKind
from services.diagnosis import diagnose
from services.fixes import Fix, FixKind, FixService, NoFix, ProposalState, prepare_fix
from services.followups import FollowUp, check_followed
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

ALICE, BOB = "U0ALICE001", "U0BOB00002"
PREPARE = "Prepare fix in QuickBooks"
DUPLICATE = "QuickBooks refused: Duplicate Document Number Error"


def resynced_anyway() -> World:
    """11265 after **Resync anyway**: both at $50.00; CB-4471 still failed in the portal and
    unapplied in QuickBooks."""
    held = qbo_payment("CB-4471", "10.00", unapplied="10.00").model_copy(update={"sync_token": "0"})
    return World(
        acct=acct("50.00"),
        portal=mirror("50.00"),
        portal_payments=[
            portal_payment("CB-4471", "10.00", TransferStatus.FAILED, error=DUPLICATE)
        ],
        qbo_payments=[held],
    )


async def service(world: World, *risks: AtRisk) -> FixService:
    followups = MemoryFollowUps()
    for risk in risks:
        await followups.open(invoice="11265", risk=risk, acknowledged_by=ALICE, job_id=None)
    return FixService(
        accounting=FakeAccounting(world),
        writer=FakeWriter(world),
        portal=FakePortal(world),
        records=MemoryFixRecords(),
        followups=followups,
        audit=MemoryAudit(),
        clock=lambda: NOW,
    )


def risk(kind: RiskKind, reference: str, amount: str = "10.00") -> AtRisk:
    return AtRisk(kind=kind, reference=reference, amount=Decimal(amount), what="x")


async def test_money_still_apart_after_a_resync_anyway_gets_its_fix_and_closes() -> None:
    world = resynced_anyway()
    fixes = await service(world, risk(RiskKind.FAILED_PAYMENT, "CB-4471"))

    proposal = await fixes.propose("11265", user=ALICE, channel="C1", thread_ts="1.1")

    assert not isinstance(proposal, NoFix)
    fix = proposal.fix
    assert (fix.kind, fix.amount, fix.qbo_before, fix.portal_before) == (
        FixKind.APPLY_PAYMENT,
        Decimal("10.00"),
        Decimal("50.00"),
        Decimal("50.00"),
    )
    assert fix.dismiss is not None and fix.dismiss.reference == "CB-4471"
    result = await fixes.apply(await fixes.approve(proposal.id, user=BOB, allowed=True))
    assert result.proposal.state is ProposalState.DONE
    assert world.qbo_writes == [proposal.request_id] and world.dismissed == ["pay-CB-4471"]
    assert world.acct.balance == Decimal("40.00")
    assert result.followups == () and await fixes.followups.open_for(invoice="11265") == []
    assert result.needs_resync  # the portal's $50.00 follows QuickBooks' $40.00, by the runner


async def test_a_credit_still_apart_gets_the_memo_applied_and_a_transfer_already_gone() -> None:
    world = resynced_anyway()
    world.acct, world.portal = acct("120.00", total="120.00"), mirror("120.00")
    world.portal_payments, world.qbo_payments = [], []
    world.memos = [credit_memo("20.00")]
    fixes = await service(world, risk(RiskKind.UNAPPLIED_CREDIT, "CM-1042", "20.00"))
    proposal = await fixes.propose("11265", user=ALICE, channel="C1", thread_ts="1.1")
    assert not isinstance(proposal, NoFix)
    assert proposal.fix.kind is FixKind.APPLY_CREDIT and proposal.fix.dismiss is None
    result = await fixes.apply(await fixes.approve(proposal.id, user=BOB, allowed=True))
    assert result.proposal.state is ProposalState.DONE and result.followups == ()
    assert world.dismissed == []


async def test_in_sync_money_with_nothing_left_to_apply_says_why() -> None:
    world = resynced_anyway()
    world.qbo_payments = []  # never entered in QuickBooks: it must be received by hand
    fixes = await service(world, risk(RiskKind.FAILED_PAYMENT, "CB-4471"))
    proposed = await fixes.propose("11265", user=ALICE, channel="C1", thread_ts="1.1")
    assert isinstance(proposed, NoFix) and "holds nothing unapplied like CB-4471" in proposed.reason
    nothing = await (await service(resynced_anyway())).propose(
        "11265", user=ALICE, channel="C1", thread_ts="1.1"
    )
    assert isinstance(nothing, NoFix) and "in sync" in nothing.reason


def followup(kind: RiskKind, reference: str, number: str = "11265") -> FollowUp:
    return FollowUp(
        id=1,
        invoice=number,
        kind=kind,
        reference=reference,
        amount=Decimal("10.00"),
        what="x",
        acknowledged_by=ALICE,
        opened_at=NOW,
    )


def labels(message: object) -> list[str]:
    blocks = message.blocks  # type: ignore[attr-defined]
    return [
        e.text.text for b in blocks if b.type == "actions" for e in b.elements if e.type == "button"
    ]


def test_the_check_and_the_digest_offer_the_fix_for_money_still_to_account_for() -> None:
    c = comparison(acct("50.00"), mirror("50.00"))
    owed = [followup(RiskKind.FAILED_PAYMENT, "CB-4471")]
    shown = check_message(c, now=NOW, full_resync_since=date(2026, 1, 1), followups=owed)
    assert labels(shown) == [PREPARE]
    unexplained = [followup(RiskKind.UNEXPLAINED, "unexplained")]
    plain = check_message(c, now=NOW, full_resync_since=date(2026, 1, 1), followups=unexplained)
    assert PREPARE not in labels(plain)
    digest = followups_message([*owed, followup(RiskKind.UNAPPLIED_CREDIT, "CM-1042", "11266")])
    assert labels(digest) == [f"{PREPARE}: 11265", f"{PREPARE}: 11266"]


def test_prepare_fix_shows_only_where_a_fix_can_be_prepared() -> None:
    def shown(world: World) -> list[str]:
        c = comparison(world.acct, world.portal)
        ev = evidence(
            c,
            payments=tuple(world.qbo_payments),
            portal_payments=tuple(world.portal_payments),
        )
        d = diagnose(ev)
        fixable = isinstance(prepare_fix(ev, d), Fix)
        assert d.fix_ready is fixable
        return labels(check_message(c, now=NOW, full_resync_since=date(2026, 1, 1), diagnosis=d))

    failed = resynced_anyway()
    failed.portal = mirror("40.00")
    assert PREPARE in shown(failed)
    overpaid = resynced_anyway()
    overpaid.acct, overpaid.portal, overpaid.qbo_payments = acct("0.00"), mirror("-10.00"), []
    overpaid.portal_payments = [
        portal_payment("CB-4471", "10.00", TransferStatus.FAILED, error="already paid")
    ]
    assert shown(overpaid) == ["Resync anyway"]
    unknown = World(acct=acct("140.00", total="140.00"), portal=mirror("155.00"))
    assert shown(unknown) == ["Resync anyway"]


async def test_the_check_offers_no_fix_when_the_evidence_holds_nothing_to_apply() -> None:
    async def check_buttons(world: World) -> list[str]:
        fixes = await service(world, risk(RiskKind.FAILED_PAYMENT, "CB-4471"))
        c, still = await check_followed(
            "11265",
            accounting=fixes.accounting,
            portal=fixes.portal,
            store=fixes.followups,
            clock=lambda: NOW,
        )
        assert len(still) == 1
        return labels(
            check_message(c, now=NOW, full_resync_since=date(2026, 1, 1), followups=still)
        )

    assert await check_buttons(resynced_anyway()) == [PREPARE]
    never_entered = resynced_anyway()
    never_entered.qbo_payments = []  # QuickBooks holds nothing like CB-4471 to apply
    assert await check_buttons(never_entered) == []
