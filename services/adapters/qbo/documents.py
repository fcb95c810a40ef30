"""Intuit documents to domain models: amounts exact (Decimal), times in UTC."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from services.adapters.qbo.faults import SYSTEM
from services.errors import UpstreamError
from services.models import AccountingInvoice

log = logging.getLogger("services.adapters.qbo")

CENT = Decimal("0.01")


def amount(value: object) -> Decimal:
    """An amount as Intuit writes it (a JSON number, decoded as Decimal), to the cent when
    it has no finer part."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValueError(f"not an amount: {type(value).__name__}")
    return to_cents(Decimal(value))


def to_cents(exact: Decimal) -> Decimal:
    """``exact`` to the cent when it has no finer part (12.5 -> 12.50), else as it is."""
    cents = exact.quantize(CENT)
    return cents if cents == exact else exact


def opt_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def utc(value: datetime) -> datetime:
    """In UTC; a time without an offset is taken as UTC."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def utc_datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return utc(datetime.fromisoformat(value))


def to_date(value: object) -> date | None:
    return date.fromisoformat(value[:10]) if isinstance(value, str) and value else None


def to_invoice(raw: Mapping[str, Any]) -> AccountingInvoice:
    """An Intuit Invoice document (extra fields ignored) as an AccountingInvoice."""
    meta = raw.get("MetaData") or {}
    customer = raw.get("CustomerRef") or {}
    currency = raw.get("CurrencyRef") or {}
    last_updated = utc_datetime(meta.get("LastUpdatedTime"))
    if last_updated is None:
        raise ValueError("invoice without LastUpdatedTime")
    return AccountingInvoice(
        id=str(raw["Id"]),
        number=str(raw["DocNumber"]),
        customer_id=opt_str(customer.get("value")),
        customer_name=str(customer.get("name") or ""),
        total=amount(raw.get("TotalAmt", 0)),
        balance=amount(raw.get("Balance", 0)),
        currency=opt_str(currency.get("value")),
        txn_date=to_date(raw.get("TxnDate")),
        due_date=to_date(raw.get("DueDate")),
        created_at=utc_datetime(meta.get("CreateTime")),
        last_updated=last_updated,
    )


def pick_newest(rows: list[AccountingInvoice]) -> AccountingInvoice | None:
    """DocNumbers need not be unique in QBO: take the most recently changed."""
    if len(rows) > 1:
        log.warning(
            "QuickBooks Online has %d invoices numbered %s: using the newest",
            len(rows),
            rows[0].number,
        )
    return max(rows, key=lambda inv: inv.last_updated, default=None)


def parse_invoice(raw: Mapping[str, Any]) -> AccountingInvoice:
    try:
        return to_invoice(raw)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise UpstreamError(
            f"malformed invoice Id={raw.get('Id')!s:.30}: {type(exc).__name__}", system=SYSTEM
        ) from exc
