"""The QuickBooks Online Payment documents the fixes write, and what the answers say.

Applying a payment is a sparse update of the Payment at its current ``SyncToken``: its
``Line`` is replaced by the lines it already had plus one linking the invoice. Applying a
credit memo is a new $0 Payment whose two lines link the invoice and the ``CreditMemo``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from services.adapters.qbo.faults import SYSTEM
from services.errors import UpstreamError
from services.models import AccountingPayment, CreditMemo, WriteResult

_ENCODER = msgspec.json.Encoder(decimal_format="number")


def _line(txn_id: str, txn_type: str, amount: Decimal) -> dict[str, Any]:
    return {"Amount": amount, "LinkedTxn": [{"TxnId": txn_id, "TxnType": txn_type}]}


def apply_payment_body(
    payment: AccountingPayment, *, invoice_id: str, amount: Decimal
) -> dict[str, Any]:
    if payment.sync_token is None:
        raise ValueError("the payment was read without its SyncToken")
    kept = [
        _line(link.txn_id, link.txn_type, link.amount or Decimal(0))
        for link in payment.applied
        if link.txn_id != invoice_id
    ]
    already = payment.applied_to(invoice_id)
    return {
        "Id": payment.id,
        "SyncToken": payment.sync_token,
        "sparse": True,
        "Line": [*kept, _line(invoice_id, "Invoice", already + amount)],
    }


def credit_application_body(
    memo: CreditMemo, *, invoice_id: str, amount: Decimal
) -> dict[str, Any]:
    return {
        "CustomerRef": {"value": memo.customer_id},
        "TotalAmt": Decimal(0),
        "Line": [_line(invoice_id, "Invoice", amount), _line(memo.id, "CreditMemo", amount)],
    }


def encode(body: dict[str, Any]) -> bytes:
    """JSON with Decimal amounts written as exact numbers (never through float)."""
    return _ENCODER.encode(body)


def result(answer: dict[str, Any], *, request_id: str, intuit_tid: str | None) -> WriteResult:
    doc = answer.get("Payment")
    if not isinstance(doc, dict) or not doc.get("Id"):
        raise UpstreamError("the write's answer has no Payment", system=SYSTEM)
    unapplied = doc.get("UnappliedAmt")
    return WriteResult(
        txn_type="Payment",
        txn_id=str(doc["Id"]),
        sync_token=str(doc["SyncToken"]) if doc.get("SyncToken") is not None else None,
        request_id=request_id,
        intuit_tid=intuit_tid,
        unapplied=Decimal(str(unapplied)) if unapplied is not None else None,
    )
