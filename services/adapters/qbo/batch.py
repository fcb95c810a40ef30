"""One invoice read with its evidence in one request: QuickBooks' batch endpoint.

``POST /v3/company/{realm}/batch`` with ``{"BatchItemRequest": [{"bId", "Query"}]}`` answers
``{"BatchItemResponse": [{"bId", "QueryResponse"} | {"bId", "Fault"}]}``: each item on its own,
with no view of the others (so the customer's payments can be asked for only when the
customer is known beforehand: ``CustomerHints`` remembers the customer of each invoice read).
A fault on the invoice item is the request's error; a fault on the payments or credit memos
item leaves them unread (None), for the caller to read on their own.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from services.adapters.qbo import evidence
from services.adapters.qbo.documents import parse_invoice, pick_newest
from services.adapters.qbo.faults import SYSTEM, error_for, fault_from_json
from services.errors import UpstreamError
from services.models import AccountingReading

Batch = Callable[[bytes], Awaitable[dict[str, Any]]]
"""Sends a batch body, returns the answer's JSON."""
PAGE = 1000
HINTS = 10_000


class CustomerHints:
    """Invoice number -> QuickBooks customer Id, the most recent ``size`` invoices read."""

    def __init__(self, size: int = HINTS) -> None:
        self._size = size
        self._known: OrderedDict[str, str] = OrderedDict()

    def get(self, number: str) -> str | None:
        return self._known.get(number)

    def learn(self, number: str | None, customer_id: str | None) -> None:
        if not number or not customer_id:
            return
        self._known[number] = customer_id
        self._known.move_to_end(number)
        while len(self._known) > self._size:
            self._known.popitem(last=False)


def statements(number: str, customer_id: str | None) -> dict[str, str]:
    """The batch's queries by bId: the invoices with this number (duplicates and voided ones
    too), and the customer's payments and credit memos when the customer is known."""
    found = {"invoice": f"SELECT * FROM Invoice WHERE DocNumber = {evidence.quote(number)}"}
    if customer_id:
        ref = evidence.quote(customer_id)
        found["payments"] = f"SELECT * FROM Payment WHERE CustomerRef = {ref} MAXRESULTS {PAGE}"
        found["memos"] = f"SELECT * FROM CreditMemo WHERE CustomerRef = {ref} MAXRESULTS {PAGE}"
    return found


async def read_invoice(
    send: Batch, number: str, customer_id: str | None, hints: CustomerHints
) -> AccountingReading:
    """The invoice and its evidence from one batch request (see the module's docstring)."""
    queries = statements(number, customer_id)
    body = json.dumps(
        {"BatchItemRequest": [{"bId": bid, "Query": q} for bid, q in queries.items()]}
    ).encode()
    answers = _by_bid(await send(body))
    invoices = _rows(answers, "invoice", "Invoice")
    if invoices is None:
        raise UpstreamError("the batch answer has no invoice item", system=SYSTEM)
    reading = invoice_only(number, invoices, hints)
    invoice = reading.invoice
    if not customer_id or invoice is None or invoice.customer_id != customer_id:
        return reading  # not the customer asked about: the caller reads them on its own
    payments = _rows(answers, "payments", "Payment")
    memos = _rows(answers, "memos", "CreditMemo")
    if payments is None or memos is None or PAGE in (len(payments), len(memos)):
        return reading  # a fault, or a full page that may hide more
    return reading.model_copy(
        update={
            "customer_id": customer_id,
            "payments": tuple(evidence._parsed(payments, evidence.to_payment)),
            "credit_memos": tuple(evidence._parsed(memos, evidence.to_credit_memo)),
        }
    )


def invoice_only(number: str, invoices: list[Any], hints: CustomerHints) -> AccountingReading:
    """The reading of the invoice query's rows alone (payments and credit memos unread)."""
    rows = [raw for raw in invoices if isinstance(raw, Mapping) and raw.get("DocNumber") == number]
    invoice = pick_newest([parse_invoice(raw) for raw in rows])
    hints.learn(number, invoice.customer_id if invoice else None)
    records = tuple(evidence._parsed(rows, evidence.to_invoice_record))
    return AccountingReading(invoice=invoice, records=records)


class BatchBudget:
    """Intuit allows 40 batch requests a minute per company: past that, a check reads the
    invoice with a plain query (its evidence then comes in a second round trip)."""

    def __init__(self, per_minute: int = 40, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._starts: deque[float] = deque()

    def take(self) -> bool:
        now = self._clock()
        while self._starts and self._starts[0] <= now - 60.0:
            self._starts.popleft()
        if len(self._starts) >= self._per_minute:
            return False
        self._starts.append(now)
        return True


def _by_bid(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    items = body.get("BatchItemResponse")
    if not isinstance(items, list):
        raise UpstreamError("the batch answer has no BatchItemResponse list", system=SYSTEM)
    return {str(i.get("bId")): i for i in items if isinstance(i, Mapping)}


def _rows(answers: Mapping[str, Mapping[str, Any]], bid: str, entity: str) -> list[Any] | None:
    """The documents of one item; None when it is absent or faulted (the invoice item's
    fault is raised: without it there is no check)."""
    item = answers.get(bid)
    if item is None:
        return None
    fault = fault_from_json(item)
    if fault is not None:
        if bid == "invoice":
            raise error_for(200, fault, request_id=None)
        return None
    response = item.get("QueryResponse")
    rows = response.get(entity, []) if isinstance(response, Mapping) else []
    return [row for row in rows if isinstance(row, Mapping)] if isinstance(rows, list) else []
