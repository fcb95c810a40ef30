"""The fake QuickBooks Online's Payment and CreditMemo documents, rendered as Intuit's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any, Protocol

from sandbox.qbo.query import Value
from sandbox.qbo.wire import intuit_time


class Document(Protocol):
    """Anything the query endpoint returns."""

    def to_intuit(self, tz: tzinfo) -> dict[str, Any]: ...


@dataclass(slots=True)
class QboPayment:
    id: str
    customer_id: str
    customer_name: str
    total: Decimal
    txn_date: date
    created: datetime
    updated: datetime
    ref_num: str | None = None
    lines: list[tuple[str, Decimal]] = field(default_factory=list)
    """(invoice Id, amount applied)."""
    currency: str | None = "USD"
    sync_token: int = 0
    recorded_by: str | None = None
    """The QuickBooks user who entered it by hand (``MetaData.LastModifiedByRef``)."""
    credits: list[tuple[str, Decimal]] = field(default_factory=list)
    """(credit memo Id, amount of its credit used): a credit application's lines."""

    @property
    def unapplied(self) -> Decimal:
        used = sum((amount for _, amount in self.lines), Decimal(0))
        return self.total - used + sum((amount for _, amount in self.credits), Decimal(0))

    def field(self, name: str) -> Value | None:
        return _common(self, name)

    def to_intuit(self, tz: tzinfo) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "Id": self.id,
            "SyncToken": str(self.sync_token),
            "domain": "QBO",
            "sparse": False,
            "MetaData": _meta(self.created, self.updated, tz),
            "TxnDate": self.txn_date.isoformat(),
            "CustomerRef": {"value": self.customer_id, "name": self.customer_name},
            "DepositToAccountRef": {"value": "4"},
            "TotalAmt": self.total,
            "UnappliedAmt": self.unapplied,
            "ProcessPayment": False,
            "Line": [
                {"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}
                for invoice_id, amount in self.lines
            ]
            + [
                {"Amount": amount, "LinkedTxn": [{"TxnId": memo_id, "TxnType": "CreditMemo"}]}
                for memo_id, amount in self.credits
            ],
        }
        if self.ref_num:
            doc["PaymentRefNum"] = self.ref_num
        if self.currency:
            doc["CurrencyRef"] = {"value": self.currency}
        if self.recorded_by:
            doc["MetaData"]["LastModifiedByRef"] = {"value": self.recorded_by}
        return doc


@dataclass(slots=True)
class QboCreditMemo:
    id: str
    doc_number: str
    customer_id: str
    customer_name: str
    total: Decimal
    txn_date: date
    created: datetime
    updated: datetime
    applied: list[tuple[str, Decimal]] = field(default_factory=list)
    """(invoice Id, amount of credit used on it)."""
    sync_token: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.total - sum((amount for _, amount in self.applied), Decimal(0))

    def field(self, name: str) -> Value | None:
        if name == "DocNumber":
            return self.doc_number
        if name == "Balance":
            return self.remaining
        return _common(self, name)

    def to_intuit(self, tz: tzinfo) -> dict[str, Any]:
        return {
            "Id": self.id,
            "SyncToken": str(self.sync_token),
            "domain": "QBO",
            "sparse": False,
            "MetaData": _meta(self.created, self.updated, tz),
            "DocNumber": self.doc_number,
            "TxnDate": self.txn_date.isoformat(),
            "CustomerRef": {"value": self.customer_id, "name": self.customer_name},
            "Line": [
                {
                    "Id": "1",
                    "LineNum": 1,
                    "Description": "Service credit",
                    "Amount": self.total,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Services"}},
                }
            ],
            "TotalAmt": self.total,
            "RemainingCredit": self.remaining,
            "Balance": self.remaining,
            "CurrencyRef": {"value": "USD"},
        }


def _common(doc: QboPayment | QboCreditMemo, name: str) -> Value | None:
    if name == "Id":
        return int(doc.id)
    if name == "CustomerRef":
        return doc.customer_id
    if name == "TxnDate":
        return doc.txn_date
    if name == "TotalAmt":
        return doc.total
    if name == "MetaData.CreateTime":
        return doc.created
    if name == "MetaData.LastUpdatedTime":
        return doc.updated
    raise KeyError(name)


def _meta(created: datetime, updated: datetime, tz: tzinfo) -> dict[str, str]:
    return {"CreateTime": intuit_time(created, tz), "LastUpdatedTime": intuit_time(updated, tz)}
