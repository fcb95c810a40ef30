from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from services.comparison import Verdict
from services.models import AccountingInvoice, PortalInvoice
from services.reconcile import choose_sync_date, compare

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def acct(balance: str, *, updated: datetime = NOW) -> AccountingInvoice:
    return AccountingInvoice(
        id="1",
        number="11260",
        customer_name="Best Tackle",
        total=Decimal("50.00"),
        balance=Decimal(balance),
        last_updated=updated,
    )


def portal(balance: str) -> PortalInvoice:
    return PortalInvoice(
        number="11260",
        customer_name="Best Tackle",
        total=Decimal("50.00"),
        balance=Decimal(balance),
        status="open",
        integration_id="int-1",
        last_synced_at=NOW - timedelta(days=4),
    )


def test_mismatch_carries_the_exact_difference() -> None:
    result = compare("11260", acct("50.00"), portal("40.00"), checked_at=NOW)
    assert result.verdict is Verdict.MISMATCH
    assert result.difference == Decimal("10.00")
    assert result.out_of_sync
    assert result.portal_last_sync_at == NOW - timedelta(days=4)


def test_equal_balances_are_in_sync_whatever_the_scale() -> None:
    result = compare("11260", acct("50.0"), portal("50.00"), checked_at=NOW)
    assert result.verdict is Verdict.IN_SYNC
    assert not result.out_of_sync


def test_missing_sides() -> None:
    assert compare("1", acct("1"), None, checked_at=NOW).verdict is Verdict.MISSING_IN_PORTAL
    assert compare("1", None, portal("1"), checked_at=NOW).verdict is Verdict.MISSING_IN_ACCOUNTING
    assert compare("1", None, None, checked_at=NOW).verdict is Verdict.NOT_FOUND


def test_sync_date_defaults_to_one_day_back() -> None:
    assert choose_sync_date(now=NOW) == date(2026, 11, 29)
    assert choose_sync_date(now=NOW, last_modified=NOW - timedelta(hours=2)) == date(2026, 11, 29)


def test_sync_date_goes_back_before_an_older_modification() -> None:
    three_days_ago = NOW - timedelta(days=3)
    assert choose_sync_date(now=NOW, last_modified=three_days_ago) == date(2026, 11, 26)
