"""Marking a follow-up accounted for by hand (services.followups.mark_accounted_for)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.errors import BotError
from services.followups import mark_accounted_for
from services.models import AtRisk, RiskKind
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
        store, one.id, by="U2", reason=" written  off ", clock=lambda: AT
    )
    assert (closed.closed_by, closed.closed_at) == ("U2", AT)
    assert closed.closed_because == "marked accounted for: written off"
    assert [f.id for f in await store.all_open()] == [other.id]
    with pytest.raises(BotError, match="already closed"):
        await mark_accounted_for(store, one.id, by="U2", reason="again", clock=lambda: AT)


@pytest.mark.parametrize("reason", ["", "  ", "ok", "x" * 201])
async def test_a_reason_is_required(reason: str) -> None:
    store = MemoryFollowUps()
    one = await store.open(
        invoice="11269", risk=risk(RiskKind.UNEXPLAINED, "unexplained", "15.00"),
        acknowledged_by="U1", job_id=None,
    )  # fmt: skip
    with pytest.raises(BotError, match="Say in a few words"):
        await mark_accounted_for(store, one.id, by="U2", reason=reason)
    assert await store.open_for(invoice="11269") == [one]


async def test_money_the_evidence_settles_is_never_closed_by_hand() -> None:
    store = MemoryFollowUps()
    payment = await store.open(
        invoice="11265", risk=risk(RiskKind.FAILED_PAYMENT, "CB-4471", "10.00"),
        acknowledged_by="U1", job_id=None,
    )  # fmt: skip
    with pytest.raises(BotError, match="closes by itself"):
        await mark_accounted_for(store, payment.id, by="U2", reason="trust me")
    assert await store.open_for(invoice="11265") == [payment]
