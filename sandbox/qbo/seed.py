"""Playing out a scenario's story in the fake QBO: the payments, credits, deletions and
voids happen through the same mechanics the API uses, at the times the story says."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sandbox.qbo.invoices import QboInvoice
from sandbox.qbo.ledger import Ledger
from sandbox.qbo.payments import QboCreditMemo
from sandbox.scenarios import Paid, SeedInvoice


class Company(Protocol):
    """What a story needs of the fake QuickBooks company (``sandbox.qbo.state.QboState``)."""

    ledger: Ledger

    def add_invoice(
        self,
        number: str,
        *,
        total: Decimal,
        customer_id: str = ...,
        customer_name: str = ...,
        invoice_id: str | None = ...,
        created: datetime | None = ...,
    ) -> QboInvoice: ...

    def add_credit_memo(
        self, customer_id: str, total: Decimal, *, number: str, when: datetime | None = ...
    ) -> QboCreditMemo: ...

    def delete_invoice(self, number: str, *, when: datetime | None = ...) -> QboInvoice: ...

    def void_invoice(self, number: str, *, when: datetime | None = ...) -> QboInvoice: ...


def seed_story(state: Company, row: SeedInvoice, now: datetime) -> None:
    """Create ``row``'s invoice long before the portal's last sync, then let its story
    happen; the result matches the row's QBO balance (checked)."""
    story = row.story
    assert story is not None and row.qbo_balance is not None
    created = row.portal_synced - timedelta(days=10)
    first_id = row.portal_external_id if story.recreated else row.qbo_id
    invoice = state.add_invoice(
        row.number,
        total=row.total,
        customer_id=row.customer_id,
        customer_name=row.customer,
        invoice_id=first_id,
        created=created,
    )
    for paid in story.portal_payments:
        if paid.qbo_id is not None:  # posted by the portal's payment run at the time
            state.ledger.receive_payment(
                payment_body(row, paid, invoice.id), now=now - paid.ago, payment_id=paid.qbo_id
            )
    for paid in story.hand_payments:
        body = payment_body(row, paid, None)
        state.ledger.receive_payment(body, now=now - paid.ago, payment_id=paid.qbo_id)
    changed = row.qbo_updated
    if story.credit_taken_off is not None:
        number, amount = story.credit_taken_off
        applied = created + timedelta(days=1)
        memo = state.add_credit_memo(row.customer_id, amount, number=number, when=applied)
        state.ledger.apply_credit(memo, invoice, amount, now=applied)
        state.ledger.unapply_credit(memo, invoice, now=changed)
    if story.recreated:
        state.delete_invoice(row.number, when=changed)
        invoice = state.add_invoice(
            row.number,
            total=row.total,
            customer_id=row.customer_id,
            customer_name=row.customer,
            invoice_id=row.qbo_id,
            created=changed,
        )
    if story.voided:
        invoice = state.void_invoice(row.number, when=changed)
    if invoice.balance != row.qbo_balance:
        raise AssertionError(f"scenario {row.number}: QBO balance {invoice.balance}")


def payment_body(row: SeedInvoice, paid: Paid, invoice_id: str | None) -> dict[str, Any]:
    """An Intuit Payment document, applied to ``invoice_id`` (or to nothing)."""
    body: dict[str, Any] = {
        "CustomerRef": {"value": row.customer_id, "name": row.customer},
        "TotalAmt": paid.amount,
        "PaymentRefNum": paid.reference,
        "Line": [],
    }
    if invoice_id is not None:
        body["Line"] = [
            {"Amount": paid.amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}
        ]
    return body
