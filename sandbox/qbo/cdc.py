"""The fake QuickBooks Online's Change Data Capture (``GET /cdc``) and batch (``POST
/batch``) endpoints, and the changes a person makes by hand in QuickBooks (the console's
``qbo pay`` and ``qbo change``)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.qbo.invoices import QboInvoice
from sandbox.qbo.payments import QboPayment
from sandbox.qbo.query import QueryError, parse_query
from sandbox.qbo.state import QboState
from sandbox.qbo.wire import fault, intuit_time, json_response

CDC_DAYS = 30
CDC_ENTITIES = ("Invoice", "Payment", "CreditMemo")
BATCH_MAX = 30
CDC_MAX = 1000
"""At most this many objects in one CDC answer, across the entities asked for (as Intuit)."""


def _now_text(state: QboState) -> str:
    return intuit_time(state.clock(), state.tz, millis=True)


def _bad(state: QboState, detail: str, message: str = "Invalid request") -> Response:
    return json_response(
        fault("ValidationFault", "4000", message, detail, time=_now_text(state)), 400
    )


async def cdc(state: QboState, request: Request) -> Response:
    """What changed since ``changedSince`` (at most 30 days back), by entity; at most
    CDC_MAX objects in all (the rest is left out, as QuickBooks does)."""
    entities = [e.strip() for e in request.query_params.get("entities", "").split(",") if e.strip()]
    raw = request.query_params.get("changedSince", "")
    try:
        since = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return _bad(state, "changedSince is not a date and time")
    if since.tzinfo is None or not entities:
        return _bad(state, "entities and changedSince (with an offset) are required")
    if since < state.clock() - timedelta(days=CDC_DAYS):
        return _bad(state, f"changedSince must be within the last {CDC_DAYS} days")
    parts: list[dict[str, Any]] = []
    room = CDC_MAX
    for entity in entities:
        if entity not in CDC_ENTITIES:
            return _bad(state, f"Unsupported entity {entity[:40]}")
        docs: list[Any]
        if entity == "Invoice":
            docs = [i for i in state.invoices.all_by_id() if i.updated >= since]
        elif entity == "Payment":
            docs = [p for p in state.ledger.payments.values() if p.updated >= since]
        else:
            docs = [m for m in state.ledger.credit_memos.values() if m.updated >= since]
        docs = sorted(docs, key=lambda d: d.updated)[:room]
        room -= len(docs)
        parts.append({entity: [_doc(state, d) for d in docs]})
    return json_response({"CDCResponse": [{"QueryResponse": parts}], "time": _now_text(state)})


def _doc(state: QboState, doc: Any) -> Any:
    """An invoice as its JSON text (written as it is), a payment or memo as a document."""
    return doc.to_json(state.tz) if isinstance(doc, QboInvoice) else doc.to_intuit(state.tz)


async def batch(state: QboState, request: Request) -> Response:
    """Up to 30 queries in one request, each answered under its ``bId``."""
    try:
        body = json.loads(await request.body())
        items = body["BatchItemRequest"]
        if not isinstance(items, list) or not items:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return _bad(state, "BatchItemRequest is missing or empty")
    if len(items) > BATCH_MAX:
        return _bad(state, f"At most {BATCH_MAX} items a batch")
    answers = []
    for item in items:
        bid = str((item or {}).get("bId", ""))
        statement = str((item or {}).get("Query") or "")
        try:
            query = parse_query(statement, tz=state.tz)
        except QueryError as exc:
            error = {"Message": exc.message, "Detail": exc.detail, "code": "4000"}
            answers.append({"bId": bid, "Fault": {"Error": [error], "type": "ValidationFault"}})
            continue
        state.queries.append(statement)
        result = state.run_query(query)
        if isinstance(result, int):
            answers.append({"bId": bid, "QueryResponse": {"totalCount": result}})
            continue
        envelope: dict[str, Any] = {}
        if result:
            envelope = {
                query.entity: [_doc(state, d) for d in result],
                "startPosition": query.start_position,
                "maxResults": len(result),
            }
        answers.append({"bId": bid, "QueryResponse": envelope})
    return json_response({"BatchItemResponse": answers, "time": _now_text(state)})


# -- changes made by hand in QuickBooks ------------------------------------------------
def record_payment_by_hand(
    state: QboState,
    number: str,
    amount: Decimal,
    *,
    reference: str | None = None,
    by: str = "Alice (QuickBooks user)",
) -> QboPayment:
    """A person records a client's payment in QuickBooks, applied to invoice ``number``
    (PaymentRejected when QuickBooks refuses it, KeyError when there is no such invoice)."""
    invoice = state.invoice(number)
    body: dict[str, Any] = {
        "CustomerRef": {"value": invoice.customer_id},
        "TotalAmt": str(amount),
        "Line": [
            {"Amount": str(amount), "LinkedTxn": [{"TxnId": invoice.id, "TxnType": "Invoice"}]}
        ],
    }
    if reference:
        body["PaymentRefNum"] = reference
    payment = state.receive_payment(body)
    payment.recorded_by = by
    return payment


def change_invoice_amount(state: QboState, number: str, amount: Decimal) -> QboInvoice:
    """A person edits the invoice in QuickBooks so that ``amount`` is due: its lines change
    by the difference, and what was paid stays paid."""
    invoice = state.invoice(number)
    paid = invoice.total - invoice.balance
    return state.update_invoice(number, total=paid + amount, balance=amount)
