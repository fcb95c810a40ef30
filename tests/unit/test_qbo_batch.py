"""QuickBooks' batch answer read item by item: a fault on the payments item leaves them
unread (read later on their own), a fault on the invoice item is the check's error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.adapters.qbo.batch import BatchBudget, CustomerHints, read_invoice
from services.errors import ValidationFault

INVOICE = {
    "Id": "1265",
    "DocNumber": "11265",
    "CustomerRef": {"value": "63", "name": "Best Tackle"},
    "TotalAmt": 50,
    "Balance": 40,
    "MetaData": {
        "CreateTime": "2026-12-01T09:00:00-08:00",
        "LastUpdatedTime": "2026-12-02T09:00:00-08:00",
    },
}
PAYMENT = {"Id": "9", "CustomerRef": {"value": "63"}, "TotalAmt": 10, "UnappliedAmt": 10}
FAULT = {
    "Fault": {"Error": [{"Message": "Invalid query", "code": "4000"}], "type": "ValidationFault"}
}


def sender(items: dict[str, Any], sent: list[dict[str, Any]]) -> Any:
    async def send(body: bytes) -> dict[str, Any]:
        request = json.loads(body)
        sent.append(request)
        bids = [item["bId"] for item in request["BatchItemRequest"]]
        return {"BatchItemResponse": [{"bId": b, **items[b]} for b in bids if b in items]}

    return send


async def test_one_request_carries_the_invoice_payments_and_credit_memos() -> None:
    sent: list[dict[str, Any]] = []
    items = {
        "invoice": {"QueryResponse": {"Invoice": [INVOICE]}},
        "payments": {"QueryResponse": {"Payment": [PAYMENT]}},
        "memos": {"QueryResponse": {}},
    }
    hints = CustomerHints()
    reading = await read_invoice(sender(items, sent), "11265", "63", hints)
    assert len(sent) == 1 and len(sent[0]["BatchItemRequest"]) == 3
    assert reading.invoice is not None and reading.invoice.balance == 40
    assert reading.customer_id == "63" and reading.credit_memos == ()
    assert [p.id for p in reading.payments or ()] == ["9"]
    assert hints.get("11265") == "63"


async def test_a_faulted_item_is_left_unread_and_the_invoice_fault_raised() -> None:
    items = {
        "invoice": {"QueryResponse": {"Invoice": [INVOICE]}},
        "payments": FAULT,
        "memos": {"QueryResponse": {}},
    }
    reading = await read_invoice(sender(items, []), "11265", "63", CustomerHints())
    assert reading.invoice is not None and reading.payments is None
    other = await read_invoice(
        sender({**items, "payments": {}}, []), "11265", "70", CustomerHints()
    )
    assert other.payments is None  # the invoice is another customer's: not theirs to use
    with pytest.raises(ValidationFault):
        await read_invoice(sender({**items, "invoice": FAULT}, []), "11265", "63", CustomerHints())


def test_hints_keep_the_latest_and_the_budget_forty_batches_a_minute() -> None:
    hints = CustomerHints(size=2)
    for number in ("1", "2", "3"):
        hints.learn(number, f"c{number}")
    assert (hints.get("1"), hints.get("3")) == (None, "c3")
    now = [0.0]
    budget = BatchBudget(clock=lambda: now[0])
    assert all(budget.take() for _ in range(40)) and not budget.take()
    now[0] = 60.0
    assert budget.take()
