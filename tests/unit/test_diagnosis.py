"""The pure diagnosis: each cause from its evidence, the action that fixes it, and what a
resync would hide."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from services.causes import Action, Cause, Confidence
from services.comparison import Evidence, Verdict
from services.diagnosis import diagnose
from services.models import TransferStatus
from tests.diagnosis_support import (
    AFTER_SYNC,
    SYNCED,
    acct,
    comparison,
    credit_memo,
    evidence,
    mirror,
    portal_payment,
    qbo_payment,
    record,
)

FAILED, PENDING, POSTED = TransferStatus.FAILED, TransferStatus.PENDING, TransferStatus.POSTED


def test_changed_after_the_portals_last_sync_is_a_stale_copy_fixed_by_a_resync() -> None:
    d = diagnose(evidence(comparison(acct("50.00", updated=AFTER_SYNC), mirror("40.00"))))
    assert (d.cause, d.action, d.confidence) == (Cause.STALE_COPY, Action.RESYNC, Confidence.HIGH)
    assert d.offers_plain_resync and not d.hidden_by_resync and d.money_at_risk == 0
    assert "Changed in QuickBooks on 2026-11-30 09:00 UTC" in d.evidence[0]
    assert "after the portal last synced it (2026-11-25 12:00 UTC)" in d.evidence[0]


def test_a_change_quickbooks_dates_in_the_second_of_the_portals_sync_may_be_after_it() -> None:
    """QuickBooks dates changes to the second: a fix written 0.3 s after a resync at
    12:00:00.5 reads 12:00:00, before the sync; it is still a change the sync missed (not a
    difference nothing explains). A change dated the second before is not."""
    synced = SYNCED + timedelta(milliseconds=500)
    portal = mirror("50.00").model_copy(update={"last_synced_at": synced})
    same_second = diagnose(evidence(comparison(acct("40.00", updated=SYNCED), portal)))
    assert same_second.cause is Cause.STALE_COPY and same_second.offers_plain_resync
    assert same_second.at_risk == ()
    earlier = SYNCED - timedelta(seconds=1)
    before = diagnose(evidence(comparison(acct("40.00", updated=earlier), portal)))
    assert before.cause is Cause.UNKNOWN
    assert [(r.kind.value, r.amount) for r in before.at_risk] == [("unexplained", Decimal("10.00"))]


def test_created_after_the_last_sync_and_missing_from_the_portal_is_stale() -> None:
    d = diagnose(evidence(comparison(acct("250.00", updated=AFTER_SYNC), None)))
    assert d.cause is Cause.STALE_COPY and d.action is Action.RESYNC
    assert d.evidence[0].startswith("Created in QuickBooks on")


def test_a_failed_portal_payment_is_named_and_never_resynced_plainly() -> None:
    failed = portal_payment("CB-4471", "10.00", FAILED, error="Invoice already paid")
    c = comparison(acct("50.00", updated=AFTER_SYNC), mirror("40.00"))  # stale as well
    d = diagnose(evidence(c, portal_payments=(failed,)))
    assert d.cause is Cause.PAYMENT_NOT_TRANSFERRED and d.confidence is Confidence.HIGH
    assert d.action is Action.FIX_IN_QUICKBOOKS and not d.offers_plain_resync
    assert d.evidence[0] == (
        "Portal payment CB-4471 of $10.00 on Nov 28 failed to post to QuickBooks: "
        "Invoice already paid"
    )
    assert "exactly that payment" in d.evidence[-1]
    assert d.hidden_by_resync == ("portal payment CB-4471 of $10.00 (failed to post)",)
    assert d.money_at_risk == Decimal("10.00")
    assert any("receive payment CB-4471 of $10.00 on invoice 11265" in s for s in d.steps)
    assert d.steps[-1] == "Then resync the invoice."


def test_a_failed_payment_already_entered_by_hand_says_where_it_is() -> None:
    failed = portal_payment("CB-4471", "10.00", FAILED, error="Duplicate reference")
    by_hand = qbo_payment("CB-4471", "10.00", unapplied="10.00")
    c = comparison(acct("50.00"), mirror("40.00"))
    d = diagnose(evidence(c, portal_payments=(failed,), payments=(by_hand,)))
    assert d.cause is Cause.PAYMENT_NOT_TRANSFERRED
    assert any("applied to no invoice (entered by hand?)" in line for line in d.evidence)
    assert d.steps[0] == "In QuickBooks, apply payment CB-4471 to invoice 11265."


def test_a_pending_portal_payment_waits_and_is_not_hidden() -> None:
    pending = portal_payment("CB-4480", "10.00", PENDING)
    d = diagnose(evidence(comparison(acct("50.00"), mirror("40.00")), portal_payments=(pending,)))
    assert d.cause is Cause.PAYMENT_NOT_TRANSFERRED and d.confidence is Confidence.MEDIUM
    assert d.action is Action.NONE and d.hidden_by_resync and not d.offers_plain_resync
    assert "has not reached QuickBooks yet" in d.evidence[0]


def test_posted_portal_payments_are_not_a_cause() -> None:
    posted = portal_payment("CB-4400", "5.00", POSTED)
    c = comparison(acct("50.00", updated=AFTER_SYNC), mirror("40.00"))
    d = diagnose(evidence(c, portal_payments=(posted,)))
    assert d.cause is Cause.STALE_COPY and d.offers_plain_resync


def test_an_unapplied_credit_that_explains_the_difference() -> None:
    c = comparison(acct("120.00", updated=AFTER_SYNC, total="120.00"), mirror("100.00"))
    d = diagnose(evidence(c, credit_memos=(credit_memo("20.00"),)))
    assert (d.cause, d.confidence) == (Cause.CREDIT_NOT_APPLIED, Confidence.HIGH)
    assert d.action is Action.FIX_IN_QUICKBOOKS
    assert d.hidden_by_resync == ("credit memo CM-1042 of $20.00 (not applied in QuickBooks)",)
    assert d.money_at_risk == Decimal("20.00")
    assert "Credit memo CM-1042 of $20.00 on Harbor Dental has $20.00 not applied" in d.evidence[0]
    assert "exactly that credit" in d.evidence[1]
    assert d.steps[0].startswith("In QuickBooks, apply credit memo CM-1042 to invoice 11265")


def test_an_unapplied_payment_counts_as_a_credit() -> None:
    c = comparison(acct("120.00", total="120.00"), mirror("100.00"))
    d = diagnose(evidence(c, payments=(qbo_payment("CHK-88", "20.00", unapplied="20.00"),)))
    assert d.cause is Cause.CREDIT_NOT_APPLIED
    assert "applied to no invoice" in d.evidence[0]


def test_a_credit_too_small_to_explain_the_difference_is_not_the_cause() -> None:
    c = comparison(acct("120.00", updated=AFTER_SYNC, total="120.00"), mirror("100.00"))
    d = diagnose(evidence(c, credit_memos=(credit_memo("5.00"),)))
    assert d.cause is Cause.STALE_COPY


def test_a_recreated_invoice_without_portal_payments_needs_the_full_resync() -> None:
    c = comparison(acct("50.00", invoice_id="1300", updated=AFTER_SYNC), mirror("40.00"))
    d = diagnose(evidence(c, link_checked=True))  # the portal's link (1006) is gone
    assert d.cause is Cause.INVOICE_RECREATED and d.action is Action.FULL_RESYNC
    assert not d.record_resync_works and d.offers_plain_resync
    assert "linked to QuickBooks invoice Id 1006, which no longer exists" in d.evidence[0]
    assert "now Id 1300" in d.evidence[1]


def test_a_recreated_invoice_with_a_payment_on_the_deleted_one_hides_money() -> None:
    posted = portal_payment("CB-4502", "30.00", POSTED)
    held = qbo_payment("CB-4502", "30.00", unapplied="30.00")
    c = comparison(acct("90.00", invoice_id="1300", total="90.00"), mirror("60.00"))
    d = diagnose(evidence(c, link_checked=True, portal_payments=(posted,), payments=(held,)))
    assert d.cause is Cause.INVOICE_RECREATED and d.action is Action.FIX_IN_QUICKBOOKS
    assert d.hidden_by_resync == (
        "portal payment CB-4502 of $30.00 (posted to the deleted invoice)",
    )
    assert d.steps[0] == "In QuickBooks, apply payment CB-4502 ($30.00) to invoice 11265 (Id 1300)."
    assert "full integration resync" in d.steps[-1]


def test_a_link_to_another_existing_invoice_is_not_checked_as_gone() -> None:
    c = comparison(acct("50.00", invoice_id="1300"), mirror("40.00"))
    other = record(acct("10.00", invoice_id="1006"), number="99999")
    d = diagnose(evidence(c, link_checked=True, link_record=other))
    assert d.cause is Cause.INVOICE_RECREATED  # the link points at another invoice


def test_deleted_in_quickbooks() -> None:
    c = comparison(None, mirror("40.00"))
    d = diagnose(evidence(c, link_checked=True))
    assert c.verdict is Verdict.MISSING_IN_ACCOUNTING
    assert d.cause is Cause.INVOICE_DELETED and d.action is Action.NONE


def test_voided_in_quickbooks() -> None:
    voided = acct("0.00", updated=AFTER_SYNC)
    c = comparison(voided, mirror("45.00"))
    d = diagnose(evidence(c, records=(record(voided, voided=True),)))
    assert d.cause is Cause.INVOICE_VOIDED and d.action is Action.RESYNC
    paid = portal_payment("CB-1", "5.00", POSTED)
    d = diagnose(evidence(c, records=(record(voided, voided=True),), portal_payments=(paid,)))
    assert d.cause is Cause.INVOICE_VOIDED and d.action is Action.FIX_IN_QUICKBOOKS
    assert d.hidden_by_resync == ("portal payment CB-1 of $5.00 (on the voided invoice)",)


def test_a_few_cents_are_rounding_without_any_reads() -> None:
    c = comparison(acct("107.27"), mirror("107.25"))
    assert c.verdict is Verdict.ROUNDING and not c.out_of_sync
    d = diagnose(Evidence(comparison=c))
    assert (d.cause, d.action) == (Cause.ROUNDING, Action.NONE)
    assert d.summary == "$0.02 apart, within the $0.05 tolerance: not a discrepancy."
    assert comparison(acct("107.27"), mirror("107.20")).verdict is Verdict.MISMATCH


def test_unknown_stays_unknown_and_says_what_was_checked() -> None:
    d = diagnose(evidence(comparison(acct("140.00", total="155.00"), mirror("155.00"))))
    assert (d.cause, d.confidence, d.action) == (Cause.UNKNOWN, Confidence.LOW, Action.INVESTIGATE)
    assert not d.offers_plain_resync and d.evidence == ()
    checked = "\n".join(d.checked)
    for fact in (
        "QuickBooks last changed it 2026-11-20 12:00 UTC; the portal last synced it 2026-11-25",
        "Portal payments on it: none.",
        "Unapplied credits and payments of Harbor Dental in QuickBooks: none.",
        "The portal's link to QuickBooks: Id 1006 (current).",
        "Voided in QuickBooks: no.",
    ):
        assert fact in checked


def test_what_could_not_be_read_is_said_and_lowers_the_confidence() -> None:
    c = comparison(acct("50.00", updated=AFTER_SYNC), mirror("40.00"))
    d = diagnose(evidence(c, gaps=("portal payments (portal did not answer: 503)",)))
    assert d.cause is Cause.STALE_COPY and d.confidence is Confidence.MEDIUM
    assert "Could not check: portal payments (portal did not answer: 503)" in d.checked


def test_only_the_comparison_known() -> None:
    c = comparison(acct("50.00"), mirror("40.00"))
    d = diagnose(Evidence(comparison=c))
    assert d.cause is Cause.UNKNOWN
    assert "Only the balances and change times were compared." in d.checked


def test_in_sync_has_nothing_to_explain() -> None:
    d = diagnose(Evidence(comparison=comparison(acct("50.00"), mirror("50.00"))))
    assert d.cause is Cause.IN_SYNC and d.action is Action.NONE


def test_causes_add_up_and_an_overpayment_is_advised_as_one() -> None:
    """11264 after `pay 11264 5.00`: paid in QuickBooks, the portal's $5.00 refused. The
    payment claims only its $5.00; the rest is the stale copy; the advice is a refund."""
    c = comparison(acct("0.00", updated=AFTER_SYNC, total="89.50"), mirror("84.50"))
    refused = portal_payment("CB-9001", "5.00", FAILED, error="Invoice already paid")
    d = diagnose(evidence(c, portal_payments=(refused,)))
    assert d.money_at_risk == Decimal("5.00")
    assert any(
        "the portal would show $89.50" in line and "$89.50 is a change" in line
        for line in d.evidence
    )
    assert any(step.startswith("Refund CB-9001 ($5.00)") for step in d.steps)
    assert not any("receive payment CB-9001" in step for step in d.steps)


def test_an_unexplained_remainder_is_at_risk_as_such() -> None:
    c = comparison(acct("50.00"), mirror("30.00"))  # not stale: nothing explains $10.00 of it
    pending = portal_payment("CB-1", "10.00", TransferStatus.PENDING)
    d = diagnose(evidence(c, portal_payments=(pending,)))
    kinds = {(r.kind.value, r.amount) for r in d.at_risk}
    assert kinds == {("pending_payment", Decimal("10.00")), ("unexplained", Decimal("10.00"))}
