"""QuickBooks Online evidence reads: invoices with their links and voids, payments and credit
memos of customers. QBO cannot filter Payment by the invoice it pays, so payments are read
by customer (``CustomerRef IN (...)``) and matched on ``Line[].LinkedTxn`` by the caller.

Each function takes the adapter's ``query`` (one statement, one ``QueryResponse``) and
batches: a hundred values per ``IN (...)``, a thousand rows per page, chunks in parallel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from services.adapters.qbo.documents import opt_str, to_date, utc_datetime
from services.models import AccountingPayment, CreditMemo, InvoiceRecord, LinkedTxn

log = logging.getLogger("services.adapters.qbo")

Query = Callable[[str], Awaitable[dict[str, Any]]]
T = TypeVar("T")
CHUNK = 100
"""Values per ``IN (...)``."""
PAGE = 1000
MAX_PAGES = 20
"""At most this many pages of one statement (20,000 payments of a handful of customers)."""


def quote(value: str) -> str:
    """A query literal: single quotes, with ``\\`` and ``'`` escaped by a backslash."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def find_invoice_records(query: Query, numbers: Sequence[str]) -> list[InvoiceRecord]:
    docs = await _select(query, "Invoice", "DocNumber", numbers)
    return _parsed(docs, to_invoice_record)


async def get_invoice_records(query: Query, ids: Sequence[str]) -> list[InvoiceRecord]:
    wanted = [i for i in dict.fromkeys(ids) if i.isdigit()]  # QBO Ids are digits
    return _parsed(await _select(query, "Invoice", "Id", wanted), to_invoice_record)


async def list_payments_for(query: Query, customer_ids: Sequence[str]) -> list[AccountingPayment]:
    docs = await _select(query, "Payment", "CustomerRef", customer_ids)
    return _parsed(docs, to_payment)


async def list_credit_memos_for(query: Query, customer_ids: Sequence[str]) -> list[CreditMemo]:
    docs = await _select(query, "CreditMemo", "CustomerRef", customer_ids)
    return _parsed(docs, to_credit_memo)


async def _select(
    query: Query, entity: str, field: str, values: Sequence[str]
) -> list[Mapping[str, Any]]:
    unique = list(dict.fromkeys(v for v in values if v))
    chunks = [unique[i : i + CHUNK] for i in range(0, len(unique), CHUNK)]
    pages = await asyncio.gather(*(_all(query, entity, field, chunk) for chunk in chunks))
    return [doc for page in pages for doc in page]


async def _all(query: Query, entity: str, field: str, values: list[str]) -> list[Mapping[str, Any]]:
    where = f"{field} IN ({', '.join(quote(v) for v in values)})"
    docs: list[Mapping[str, Any]] = []
    for page in range(MAX_PAGES):
        statement = (
            f"SELECT * FROM {entity} WHERE {where} "
            f"STARTPOSITION {page * PAGE + 1} MAXRESULTS {PAGE}"
        )
        rows = (await query(statement)).get(entity, [])
        if not isinstance(rows, list):
            rows = []
        docs.extend(row for row in rows if isinstance(row, Mapping))
        if len(rows) < PAGE:
            return docs
    log.warning("QuickBooks Online %s: stopped after %d rows", entity, len(docs))
    return docs


def _parsed(docs: list[Mapping[str, Any]], parse: Callable[[Mapping[str, Any]], T]) -> list[T]:
    parsed: list[T] = []
    for raw in docs:
        try:
            parsed.append(parse(raw))
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            log.warning(
                "QuickBooks Online document Id=%s skipped: %s", raw.get("Id"), type(exc).__name__
            )
    return parsed


# -- Intuit documents to domain models ------------------------------------------------
def to_invoice_record(raw: Mapping[str, Any]) -> InvoiceRecord:
    meta = raw.get("MetaData") or {}
    customer = raw.get("CustomerRef") or {}
    total = _amount(raw.get("TotalAmt", 0))
    return InvoiceRecord(
        id=str(raw["Id"]),
        number=opt_str(raw.get("DocNumber")),
        customer_id=opt_str(customer.get("value")),
        customer_name=str(customer.get("name") or ""),
        total=total,
        balance=_amount(raw.get("Balance", 0)),
        voided="Voided" in str(raw.get("PrivateNote") or "") and total == 0,
        linked=tuple(
            LinkedTxn(txn_id=str(link["TxnId"]), txn_type=str(link.get("TxnType") or ""))
            for link in raw.get("LinkedTxn") or []
        ),
        created_at=utc_datetime(meta.get("CreateTime")),
        last_updated=utc_datetime(meta.get("LastUpdatedTime")),
        sync_token=opt_str(raw.get("SyncToken")),
    )


def to_payment(raw: Mapping[str, Any]) -> AccountingPayment:
    meta = raw.get("MetaData") or {}
    customer = raw.get("CustomerRef") or {}
    total = _amount(raw.get("TotalAmt", 0))
    applied = tuple(
        LinkedTxn(txn_id=str(link["TxnId"]), txn_type="Invoice", amount=_amount(line["Amount"]))
        for line in raw.get("Line") or []
        for link in line.get("LinkedTxn") or []
        if link.get("TxnType") == "Invoice"
    )
    unapplied = raw.get("UnappliedAmt")
    return AccountingPayment(
        id=str(raw["Id"]),
        customer_id=opt_str(customer.get("value")),
        customer_name=str(customer.get("name") or ""),
        reference=opt_str(raw.get("PaymentRefNum")),
        total=total,
        unapplied=(
            _amount(unapplied)
            if unapplied is not None
            else total - sum((a.amount or Decimal(0) for a in applied), Decimal(0))
        ),
        applied=applied,
        txn_date=to_date(raw.get("TxnDate")),
        created_at=utc_datetime(meta.get("CreateTime")),
        sync_token=opt_str(raw.get("SyncToken")),
        last_updated=utc_datetime(meta.get("LastUpdatedTime")),
    )


def to_credit_memo(raw: Mapping[str, Any]) -> CreditMemo:
    meta = raw.get("MetaData") or {}
    customer = raw.get("CustomerRef") or {}
    remaining = raw.get("RemainingCredit", raw.get("Balance", 0))
    return CreditMemo(
        id=str(raw["Id"]),
        number=opt_str(raw.get("DocNumber")),
        customer_id=opt_str(customer.get("value")),
        customer_name=str(customer.get("name") or ""),
        total=_amount(raw.get("TotalAmt", 0)),
        remaining=_amount(remaining),
        txn_date=to_date(raw.get("TxnDate")),
        created_at=utc_datetime(meta.get("CreateTime")),
        sync_token=opt_str(raw.get("SyncToken")),
        last_updated=utc_datetime(meta.get("LastUpdatedTime")),
    )


def _amount(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValueError(f"not an amount: {type(value).__name__}")
    return Decimal(value)
