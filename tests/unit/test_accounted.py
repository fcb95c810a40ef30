"""Marking a follow-up accounted for by hand (services.followups.mark_accounted_for)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.causes import AtRisk, RiskKind
from services.errors import BotError, NotAllowedError
from services.followups import Closer, mark_accounted_for
from tests.unit.fakes import MemoryFollowUps

AT = datetime(2026, 12, 6, 21, 0, tzinfo=UTC)


def risk(kind: RiskKind, reference: str, amount: str) -> AtRisk:
    return AtRisk(kind=kind, reference=reference, amount=Decimal(amount), what="x")


async def test_only_that_unexplained_follow_up_closes_with_who_when_and_why() -> None:
    store = MemoryFollowUps()
    one = await store.open(
        invoice="11269", risk=risk(RiskKind.UNEXPLAINED, "unexplained", "15.00"),
        acknowledged_by="U1", job_id=None,
    )  # fmt: skip
    other = await store.open(
        invoice="11270", risk=risk(RiskKind.UNEXPLAINED, "unexplained", "5.00"),
        acknowledged_by="U1", job_id=None,
    )  # fmt: skip
    closed = await mark_accounted_for(
        store, one.id, by=Closer("U2"), reason=" written  off ", clock=lambda: AT
    )
    assert (closed.closed_by, closed.closed_at) == ("U2", AT)
    assert closed.closed_because == "marked accounted for: written off"
    assert [f.id for f in await store.all_open()] == [other.id]
    with pytest.raises(BotError, match="already closed"):
        await mark_accounted_for(store, one.id, by=Closer("U2"), reason="again", clock=lambda: AT)


@pytest.mark.parametrize("reason", ["", "  ", "ok", "x" * 201])
async def test_a_reason_is_required(reason: str) -> None:
    store = MemoryFollowUps()
    one = await store.open(
        invoice="11269", risk=risk(RiskKind.UNEXPLAINED, "unexplained", "15.00"),
        acknowledged_by="U1", job_id=None,
    )  # fmt: skip
    with pytest.raises(BotError, match="Say in a few words"):
        await mark_accounted_for(store, one.id, by=Closer("U2"), reason=reason)
    assert await store.open_for(invoice="11269") == [one]


async def test_money_the_evidence_settles_is_never_closed_by_hand() -> None:
    store = MemoryFollowUps()
    payment = await store.open(
        invoice="11265", risk=risk(RiskKind.FAILED_PAYMENT, "CB-4471", "10.00"),
        acknowledged_by="U1", job_id=None,
    )  # fmt: skip
    with pytest.raises(BotError, match="closes by itself"):
        await mark_accounted_for(store, payment.id, by=Closer("U2"), reason="trust me")
    assert await store.open_for(invoice="11265") == [payment]


async def test_whoever_acknowledged_hiding_the_money_cannot_close_it() -> None:
    store = MemoryFollowUps()
    one = await store.open(
        invoice="11269", risk=risk(RiskKind.UNEXPLAINED, "unexplained", "15.00"),
        acknowledged_by="U1", job_id=None,
    )  # fmt: skip
    with pytest.raises(NotAllowedError, match="someone else must mark it"):
        await mark_accounted_for(store, one.id, by=Closer("U1"), reason="written off")
    with pytest.raises(NotAllowedError, match="one of the approvers"):
        await mark_accounted_for(store, one.id, by=Closer("U1", approver=True), reason="ok!")
    assert await store.open_for(invoice="11269") == [one]


async def test_when_approvers_are_named_only_they_may_close() -> None:
    store = MemoryFollowUps()
    one = await store.open(
        invoice="11269", risk=risk(RiskKind.UNEXPLAINED, "unexplained", "15.00"),
        acknowledged_by="U1", job_id=None,
    )  # fmt: skip
    with pytest.raises(NotAllowedError, match="Only the approvers"):
        await mark_accounted_for(store, one.id, by=Closer("U2", approver=False), reason="ok!")
    assert await store.open_for(invoice="11269") == [one]
    closed = await mark_accounted_for(store, one.id, by=Closer("U3", approver=True), reason="ok!")
    assert closed.closed_by == "U3"
