"""Property: whatever else the evidence says, while a portal payment failed to transfer the
diagnosis never recommends a plain resync, and the check message offers no plain resync
button (only "Resync anyway", behind a confirm)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.actions import ActionId
from commands.blocks import check_message
from services.causes import Action
from services.comparison import Evidence
from services.diagnosis import diagnose
from services.models import TransferStatus
from tests.diagnosis_support import (
    AFTER_SYNC,
    BEFORE_SYNC,
    NOW,
    acct,
    comparison,
    credit_memo,
    mirror,
    portal_payment,
    qbo_payment,
    record,
)

cents = st.integers(min_value=0, max_value=20_000).map(lambda c: str(Decimal(c) / 100))
statuses = st.sampled_from(list(TransferStatus))
qbo_payments = st.builds(
    qbo_payment, st.sampled_from(["CB-1", "CB-9", "CHK"]), cents, unapplied=cents
)


@st.composite
def evidences(draw: st.DrawFn, *, with_failed: bool) -> Evidence:
    qbo_balance, portal_balance = draw(cents), draw(cents)
    has_acct, has_portal = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
    if with_failed:
        has_portal = True  # a payment in the portal needs the invoice there
    current_id = draw(st.sampled_from(["1006", "1300"]))  # 1300: recreated
    updated = draw(st.sampled_from([BEFORE_SYNC, AFTER_SYNC]))
    invoice = acct(qbo_balance, invoice_id=current_id, updated=updated) if has_acct else None
    link = draw(st.sampled_from(["1006", None]))
    portal = mirror(portal_balance, external_id=link) if has_portal else None
    tolerance = draw(st.sampled_from(["0", "0.05", "1.00"]))
    c = comparison(invoice, portal, tolerance=tolerance)
    payments = draw(
        st.lists(
            st.builds(
                portal_payment,
                st.sampled_from(["CB-1", "CB-2", "CB-3"]),
                cents,
                statuses,
                error=st.sampled_from([None, "Invoice already paid"]),
                invoice_external_id=st.sampled_from(["1006", "1300", None]),
            ),
            max_size=4,
        )
    )
    if with_failed:
        payments.append(portal_payment("CB-9", draw(cents), TransferStatus.FAILED, error="x"))
    voided = draw(st.booleans())
    return Evidence(
        comparison=c,
        tolerance=Decimal(tolerance),
        gathered=draw(st.booleans()),
        records=(record(invoice, voided=voided),) if invoice is not None else (),
        link_checked=draw(st.booleans()),
        payments=tuple(draw(st.lists(qbo_payments, max_size=2))),
        credit_memos=tuple(draw(st.lists(st.builds(credit_memo, cents), max_size=2))),
        portal_payments=tuple(payments),
        gaps=tuple(draw(st.lists(st.sampled_from(["portal payments (503)"]), max_size=1))),
    )


PLAIN = {ActionId.RESYNC_INVOICE.value, ActionId.RESYNC_FULL.value}


def offered(evidence: Evidence) -> set[str]:
    """The buttons offered without a confirm dialog (a plain click)."""
    c = evidence.comparison.model_copy(update={"diagnosis": diagnose(evidence)})
    message = check_message(c, now=NOW, full_resync_since=date(2026, 11, 29))
    return {
        element["action_id"]
        for block in message.as_kwargs()["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if "confirm" not in element or element["action_id"] == ActionId.RESYNC_ANYWAY.value
    }


@settings(max_examples=150, deadline=None)
@given(evidences(with_failed=True))
def test_never_a_plain_resync_while_a_portal_payment_failed(evidence: Evidence) -> None:
    d = diagnose(evidence)
    assert d.action not in (Action.RESYNC, Action.FULL_RESYNC, Action.INVESTIGATE)
    assert not d.offers_plain_resync
    assert any("(failed to post)" in line for line in d.hidden_by_resync)
    assert d.money_at_risk >= sum(
        (p.amount for p in evidence.portal_payments if p.status is TransferStatus.FAILED),
        Decimal(0),
    )
    assert not offered(evidence) & PLAIN


@settings(max_examples=100, deadline=None)
@given(evidences(with_failed=False))
def test_whatever_hides_money_gets_no_plain_resync_button(evidence: Evidence) -> None:
    d = diagnose(evidence)
    assert d.checked  # always says what it looked at
    if d.hidden_by_resync:
        assert not d.offers_plain_resync and not offered(evidence) & PLAIN
    if d.offers_plain_resync:
        assert not any(p.status is not TransferStatus.POSTED for p in evidence.portal_payments)


def test_the_generators_reach_the_interesting_cases() -> None:
    """The strategy is not vacuous: a stale copy with a failed payment exists in its space."""
    c = comparison(acct("50.00", updated=AFTER_SYNC), mirror("40.00"))
    failed = portal_payment("CB-9", "10.00", TransferStatus.FAILED, error="x")
    e = Evidence(comparison=c, gathered=True, portal_payments=(failed,))
    # QuickBooks holds no payment like CB-9 to apply: no fix to prepare, so no Prepare button
    assert offered(e) == {ActionId.RESYNC_ANYWAY.value}
    assert offered(Evidence(comparison=c, gathered=True)) == {ActionId.RESYNC_INVOICE.value}
