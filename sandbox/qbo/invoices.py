"""The fake QuickBooks Online's invoices: compact records rendered as Intuit documents."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sandbox.qbo.query import Condition, Query, Value
from sandbox.qbo.wire import JsonText, dumps, intuit_time


@dataclass(slots=True)
class QboInvoice:
    """One invoice. Kept compact (millions fit in memory) and rendered on the way out."""

    id: str
    doc_number: str
    customer_id: str
    customer_name: str
    total: Decimal
    balance: Decimal
    txn_date: date
    due_date: date
    created: datetime
    updated: datetime
    sync_token: int = 0
    currency: str | None = "USD"
    email_status: str = "EmailSent"
    extra: dict[str, Any] | None = None
    """More Intuit fields, merged into the document (tests add odd ones)."""
    links: list[tuple[str, str, Decimal]] | None = None
    """(TxnId, TxnType, amount) of the payments and credit memos applied to it."""
    voided: bool = False

    @property
    def unexplained_paid(self) -> Decimal:
        """Paid, but by no payment or credit on record: seeded history, shown as one payment
        (``history_payment_id``)."""
        linked = sum((amount for _, _, amount in self.links or ()), Decimal(0))
        return self.total - self.balance - linked

    @property
    def history_payment_id(self) -> str:
        return str(int(self.id) + 700000)

    def field(self, name: str) -> Value | None:
        """The value the query language compares, by canonical field name."""
        if name == "Id":
            return int(self.id)
        if name == "DocNumber":
            return self.doc_number
        if name == "CustomerRef":
            return self.customer_id
        if name == "Balance":
            return self.balance
        if name == "TotalAmt":
            return self.total
        if name == "TxnDate":
            return self.txn_date
        if name == "DueDate":
            return self.due_date
        if name == "MetaData.CreateTime":
            return self.created
        if name == "MetaData.LastUpdatedTime":
            return self.updated
        raise KeyError(name)

    def matches(self, conditions: tuple[Condition, ...]) -> bool:
        return all(c.matches(self.field(c.field)) for c in conditions)

    def to_intuit(self, tz: tzinfo) -> dict[str, Any]:
        """The invoice as Intuit's v3 API documents it, extra fields and all."""
        linked: list[dict[str, Any]] = [
            {"TxnId": txn_id, "TxnType": txn_type} for txn_id, txn_type, _ in self.links or ()
        ]
        if self.unexplained_paid > 0:
            linked.insert(0, {"TxnId": self.history_payment_id, "TxnType": "Payment"})
        doc: dict[str, Any] = {
            "AllowIPNPayment": False,
            "AllowOnlinePayment": False,
            "AllowOnlineCreditCardPayment": True,
            "AllowOnlineACHPayment": True,
            "domain": "QBO",
            "sparse": False,
            "Id": self.id,
            "SyncToken": str(self.sync_token),
            "MetaData": {
                "CreateTime": intuit_time(self.created, tz),
                "LastModifiedByRef": {"value": "9130354335788386"},
                "LastUpdatedTime": intuit_time(self.updated, tz),
            },
            "CustomField": [{"DefinitionId": "1", "Name": "Crew #", "Type": "StringType"}],
            "DocNumber": self.doc_number,
            "TxnDate": self.txn_date.isoformat(),
            "LinkedTxn": linked,
            "Line": [
                {
                    "Id": "1",
                    "LineNum": 1,
                    "Description": "Managed IT services",
                    "Amount": self.total,
                    "LinkedTxn": [],
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {
                        "ItemRef": {"value": "1", "name": "Services"},
                        "UnitPrice": self.total,
                        "Qty": 1,
                        "ItemAccountRef": {"value": "1", "name": "Services"},
                        "TaxCodeRef": {"value": "NON"},
                    },
                },
                {
                    "Amount": self.total,
                    "DetailType": "SubTotalLineDetail",
                    "SubTotalLineDetail": {},
                },
            ],
            "TxnTaxDetail": {"TotalTax": 0},
            "CustomerRef": {"value": self.customer_id, "name": self.customer_name},
            "CustomerMemo": {"value": "Thank you for your business and have a great day!"},
            "BillAddr": {"Id": str(int(self.customer_id) + 100), "Line1": self.customer_name},
            "FreeFormAddress": True,
            "SalesTermRef": {"value": "3", "name": "Net 30"},
            "DueDate": self.due_date.isoformat(),
            "TotalAmt": self.total,
            "ApplyTaxAfterDiscount": False,
            "PrintStatus": "NotSet",
            "EmailStatus": self.email_status,
            "BillEmail": {"Address": "billing@example.com"},
            "Balance": self.balance,
            "HomeBalance": self.balance,
        }
        if not self.doc_number:  # QBO leaves the key out when there is no number
            del doc["DocNumber"]
        if self.currency is not None:
            doc["CurrencyRef"] = {"value": self.currency, "name": _currency_name(self.currency)}
        if self.voided:  # QBO keeps a voided invoice, zeroed, with a note
            doc["PrivateNote"] = "Voided"
        if self.extra:
            doc.update(self.extra)
        return doc

    def to_json(self, tz: tzinfo) -> JsonText:
        """``dumps(self.to_intuit(tz))``, written directly: a page of 1000 invoices takes a
        few milliseconds instead of ~100 (the scale sandbox serves pages by the hundred).
        Kept in step with ``to_intuit`` by a test over every shape."""
        if self.extra:  # extra fields may replace any of the others, in place
            return JsonText(dumps(self.to_intuit(tz)))
        text = _encode_string
        total, balance = _number(self.total), _number(self.balance)
        customer = text(self.customer_name)
        linked = [(txn_id, txn_type) for txn_id, txn_type, _ in self.links or ()]
        if self.unexplained_paid > 0:
            linked.insert(0, (self.history_payment_id, "Payment"))
        linked_json = ",".join(
            f'{{"TxnId":{text(txn_id)},"TxnType":{text(txn_type)}}}' for txn_id, txn_type in linked
        )
        number = f',"DocNumber":{text(self.doc_number)}' if self.doc_number else ""
        note = ',"PrivateNote":"Voided"' if self.voided else ""
        currency = ""
        if self.currency is not None:
            name = _currency_name(self.currency)
            currency = f',"CurrencyRef":{{"value":{text(self.currency)},"name":{text(name)}}}'
        return JsonText(
            '{"AllowIPNPayment":false,"AllowOnlinePayment":false,'
            '"AllowOnlineCreditCardPayment":true,"AllowOnlineACHPayment":true,'
            f'"domain":"QBO","sparse":false,"Id":{text(self.id)},'
            f'"SyncToken":{text(str(self.sync_token))},'
            f'"MetaData":{{"CreateTime":{text(_time(self.created, tz))},'
            '"LastModifiedByRef":{"value":"9130354335788386"},'
            f'"LastUpdatedTime":{text(_time(self.updated, tz))}}},'
            '"CustomField":[{"DefinitionId":"1","Name":"Crew #","Type":"StringType"}]'
            f'{number},"TxnDate":{text(self.txn_date.isoformat())},"LinkedTxn":[{linked_json}],'
            '"Line":[{"Id":"1","LineNum":1,"Description":"Managed IT services",'
            f'"Amount":{total},"LinkedTxn":[],"DetailType":"SalesItemLineDetail",'
            '"SalesItemLineDetail":{"ItemRef":{"value":"1","name":"Services"},'
            f'"UnitPrice":{total},"Qty":1,"ItemAccountRef":{{"value":"1","name":"Services"}},'
            f'"TaxCodeRef":{{"value":"NON"}}}}}},{{"Amount":{total},'
            '"DetailType":"SubTotalLineDetail","SubTotalLineDetail":{}}],'
            '"TxnTaxDetail":{"TotalTax":0},'
            f'"CustomerRef":{{"value":{text(self.customer_id)},"name":{customer}}},'
            '"CustomerMemo":{"value":"Thank you for your business and have a great day!"},'
            f'"BillAddr":{{"Id":{text(str(int(self.customer_id) + 100))},"Line1":{customer}}},'
            '"FreeFormAddress":true,"SalesTermRef":{"value":"3","name":"Net 30"},'
            f'"DueDate":{text(self.due_date.isoformat())},"TotalAmt":{total},'
            '"ApplyTaxAfterDiscount":false,"PrintStatus":"NotSet",'
            f'"EmailStatus":{text(self.email_status)},'
            f'"BillEmail":{{"Address":"billing@example.com"}},"Balance":{balance},'
            f'"HomeBalance":{balance}{currency}'
            f"{note}}}"
        )


_encode_string = json.encoder.encode_basestring_ascii


@lru_cache(maxsize=1024)
def _time(value: datetime, tz: tzinfo) -> str:
    """``intuit_time``, remembered: most invoices share a handful of times."""
    return intuit_time(value, tz)


def _number(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"cannot write {value} as JSON")
    return str(value)


def _currency_name(code: str) -> str:
    return {"USD": "United States Dollar", "CAD": "Canadian Dollar", "GBP": "British Pound"}.get(
        code, code
    )


class InvoiceTable:
    """Invoices by Id with a DocNumber index and cached query results for fast paging."""

    def __init__(self) -> None:
        self._by_id: dict[str, QboInvoice] = {}
        self._by_number: dict[str, list[str]] = {}
        self._by_customer: dict[str, set[str]] = {}
        self._sorted_ids: list[str] | None = None
        self._cache: dict[tuple[object, ...], list[QboInvoice]] = {}
        self.version = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def changed(self) -> None:
        self.version += 1
        self._cache.clear()

    def add(self, invoice: QboInvoice) -> None:
        if invoice.id in self._by_id:
            raise ValueError(f"invoice Id {invoice.id} exists")
        self._by_id[invoice.id] = invoice
        self._by_number.setdefault(invoice.doc_number, []).append(invoice.id)
        self._by_customer.setdefault(invoice.customer_id, set()).add(invoice.id)
        self._sorted_ids = None
        self.changed()

    def remove(self, invoice_id: str) -> QboInvoice:
        invoice = self._by_id.pop(invoice_id)
        ids = self._by_number[invoice.doc_number]
        ids.remove(invoice_id)
        if not ids:
            del self._by_number[invoice.doc_number]
        self._by_customer[invoice.customer_id].discard(invoice_id)
        self._sorted_ids = None
        self.changed()
        return invoice

    def by_id(self, invoice_id: str) -> QboInvoice | None:
        return self._by_id.get(invoice_id)

    def by_number(self, number: str) -> list[QboInvoice]:
        return [self._by_id[i] for i in self._by_number.get(number, ())]

    def by_customer(self, customer_id: str) -> list[QboInvoice]:
        return [self._by_id[i] for i in sorted(self._by_customer.get(customer_id, ()), key=int)]

    def next_id(self) -> str:
        return str(max((int(i) for i in self._by_id), default=1000) + 1)

    def all_by_id(self) -> list[QboInvoice]:
        if self._sorted_ids is None:
            self._sorted_ids = sorted(self._by_id, key=int)
        return [self._by_id[i] for i in self._sorted_ids]

    def select(self, query: Query) -> list[QboInvoice]:
        """Every invoice the query's WHERE matches, in its order (Id when none is given)."""
        key = (query.where, query.order_by)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        rows = [inv for inv in self._candidates(query.where) if inv.matches(query.where)]
        for name, descending in reversed(query.order_by):
            rows.sort(key=_sort_key(name), reverse=descending)
        if len(self._cache) >= 16:
            self._cache.clear()
        self._cache[key] = rows
        return rows

    def _candidates(self, where: tuple[Condition, ...]) -> list[QboInvoice]:
        for cond in where:
            if cond.field == "DocNumber" and cond.op in ("=", "IN"):
                ids = {i for n in set(cond.values) for i in self._by_number.get(str(n), ())}
                return sorted((self._by_id[i] for i in ids), key=lambda inv: int(inv.id))
            if cond.field == "Id" and cond.op in ("=", "IN"):
                wanted = sorted({str(v) for v in cond.values}, key=int)
                return [self._by_id[i] for i in wanted if i in self._by_id]
        return self.all_by_id()


def _sort_key(name: str) -> Callable[[QboInvoice], tuple[bool, Any]]:
    def key(invoice: QboInvoice) -> tuple[bool, Any]:
        value = invoice.field(name)
        return (value is None, value)

    return key
