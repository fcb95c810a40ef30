"""The fake QuickBooks Online's payments and credit memos, and what they do to invoices.

Receiving a payment validates it as QBO does (the invoice must exist, be open, belong to
the customer; the reference must be new) and applies it; deleting or voiding an invoice
leaves its payments and credits unapplied on the customer. Invoices paid by no payment on
record (seeded history) show one history payment (Id = invoice Id + 700000).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.qbo.invoices import InvoiceTable, QboInvoice
from sandbox.qbo.payments import Document, QboCreditMemo, QboPayment
from sandbox.qbo.query import Query

__all__ = ["Document", "Ledger", "PaymentRejected", "QboCreditMemo", "QboPayment"]


class PaymentRejected(Exception):
    """QBO refused the payment: answered as a ValidationFault with this code."""

    def __init__(self, code: str, message: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.message, self.detail = code, message, detail


def _business(detail: str) -> PaymentRejected:
    return PaymentRejected(
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
    )


class Ledger:
    """Payments and credit memos, kept consistent with the invoices they apply to."""

    def __init__(self, invoices: InvoiceTable) -> None:
        self.invoices = invoices
        self.payments: dict[str, QboPayment] = {}
        self.credit_memos: dict[str, QboCreditMemo] = {}

    # -- payments ---------------------------------------------------------------------
    def receive_payment(
        self, body: dict[str, Any], *, now: datetime, payment_id: str | None = None
    ) -> QboPayment:
        """Create a payment from an Intuit Payment document, or raise PaymentRejected."""
        customer = (body.get("CustomerRef") or {}).get("value")
        if not customer:
            raise PaymentRejected(
                "2020", "Required param missing", "Required parameter CustomerRef is missing"
            )
        total = _amount(body.get("TotalAmt"), "TotalAmt")
        lines = [self._line(line, str(customer)) for line in body.get("Line") or []]
        if sum((amount for _, amount in lines), Decimal(0)) > total:
            raise _business("The amounts applied are more than the payment's total")
        ref = body.get("PaymentRefNum")
        for other in self.payments.values():
            if ref and other.customer_id == str(customer) and other.ref_num == ref:
                raise PaymentRejected(
                    "6140",
                    "Duplicate Document Number Error",
                    "Duplicate Document Number Error : You must specify a different number. "
                    "This number has already been used. "
                    f"DocNumber={ref} is assigned to TxnType=Payment with TxnId={other.id}",
                )
        name = (body.get("CustomerRef") or {}).get("name") or self._customer_name(str(customer))
        txn = body.get("TxnDate")
        payment = QboPayment(
            id=payment_id or self._next_id(self.payments, 9000),
            customer_id=str(customer),
            customer_name=str(name),
            total=total,
            txn_date=date.fromisoformat(txn) if isinstance(txn, str) else now.date(),
            created=now,
            updated=now,
            ref_num=str(ref) if ref else None,
            lines=[(invoice.id, amount) for invoice, amount in lines],
        )
        for invoice, amount in lines:
            self._link(invoice, payment.id, "Payment", amount, now)
        self.payments[payment.id] = payment
        return payment

    def _line(self, line: dict[str, Any], customer: str) -> tuple[QboInvoice, Decimal]:
        amount = _amount(line.get("Amount"), "Line.Amount")
        linked = [t for t in line.get("LinkedTxn") or [] if t.get("TxnType") == "Invoice"]
        if len(linked) != 1:
            raise _business("Each payment line must link one invoice")
        invoice = self.invoices.by_id(str(linked[0].get("TxnId")))
        if invoice is None:
            raise PaymentRejected(
                "610",
                "Object Not Found",
                "Object Not Found : Something you're trying to use has been made inactive. "
                "Check the fields with accounts, customers, items, vendors or employees.",
            )
        if invoice.customer_id != customer:
            raise _business(f"Invoice {invoice.doc_number} belongs to another customer")
        if invoice.voided:
            raise _business(f"Invoice {invoice.doc_number} is void")
        if invoice.balance <= 0:
            raise _business("Invoice already paid")
        if amount > invoice.balance:
            raise _business(
                f"The payment of {amount} is more than the open balance of invoice "
                f"{invoice.doc_number} ({invoice.balance})"
            )
        return invoice, amount

    def _customer_name(self, customer_id: str) -> str:
        invoices = self.invoices.by_customer(customer_id)
        return invoices[0].customer_name if invoices else ""

    # -- credit memos -----------------------------------------------------------------
    def add_credit_memo(
        self, customer_id: str, customer_name: str, total: Decimal, *, number: str, now: datetime
    ) -> QboCreditMemo:
        memo = QboCreditMemo(
            id=self._next_id(self.credit_memos, 8000),
            doc_number=number,
            customer_id=customer_id,
            customer_name=customer_name,
            total=total,
            txn_date=now.date(),
            created=now,
            updated=now,
        )
        self.credit_memos[memo.id] = memo
        return memo

    def apply_credit(
        self, memo: QboCreditMemo, invoice: QboInvoice, amount: Decimal, *, now: datetime
    ) -> None:
        if amount > memo.remaining or amount > invoice.balance:
            raise ValueError("more credit than is left, or than the invoice owes")
        memo.applied.append((invoice.id, amount))
        memo.updated = now
        memo.sync_token += 1
        self._link(invoice, memo.id, "CreditMemo", amount, now)

    def unapply_credit(self, memo: QboCreditMemo, invoice: QboInvoice, *, now: datetime) -> None:
        """Take the credit off the invoice: it sits on the customer again."""
        used = sum((a for i, a in memo.applied if i == invoice.id), Decimal(0))
        memo.applied = [(i, a) for i, a in memo.applied if i != invoice.id]
        memo.updated, memo.sync_token = now, memo.sync_token + 1
        kept = [link for link in invoice.links or () if link[:2] != (memo.id, "CreditMemo")]
        invoice.links = kept or None
        invoice.balance += used
        invoice.sync_token += 1
        invoice.updated = now
        self.invoices.changed()

    # -- invoices going away ----------------------------------------------------------
    def release(self, invoice: QboInvoice, *, now: datetime) -> None:
        """The invoice is deleted or voided: its payments and credits become unapplied."""
        for payment in self.payments.values():
            if any(i == invoice.id for i, _ in payment.lines):
                payment.lines = [(i, a) for i, a in payment.lines if i != invoice.id]
                payment.updated, payment.sync_token = now, payment.sync_token + 1
        for memo in self.credit_memos.values():
            if any(i == invoice.id for i, _ in memo.applied):
                memo.applied = [(i, a) for i, a in memo.applied if i != invoice.id]
                memo.updated, memo.sync_token = now, memo.sync_token + 1
        invoice.links = None

    # -- queries ----------------------------------------------------------------------
    def select(self, query: Query) -> list[QboPayment] | list[QboCreditMemo]:
        if query.entity == "CreditMemo":
            memos = [m for m in self.credit_memos.values() if _matches(m, query)]
            return _ordered(memos, query)
        customers = _customers(query)
        payments = list(self.payments.values())
        for invoice in self._invoices_of(customers):
            if invoice.unexplained_paid > 0 and not invoice.voided:
                payments.append(_history_payment(invoice))
        return _ordered([p for p in payments if _matches(p, query)], query)

    def _invoices_of(self, customers: set[str] | None) -> list[QboInvoice]:
        if customers is None:
            return self.invoices.all_by_id()
        return [inv for c in sorted(customers) for inv in self.invoices.by_customer(c)]

    def _link(
        self, invoice: QboInvoice, txn_id: str, txn_type: str, amount: Decimal, now: datetime
    ) -> None:
        invoice.links = [*(invoice.links or ()), (txn_id, txn_type, amount)]
        invoice.balance -= amount
        invoice.sync_token += 1
        invoice.updated = now
        self.invoices.changed()

    @staticmethod
    def _next_id(existing: dict[str, Any], floor: int) -> str:
        return str(max((int(i) for i in existing), default=floor) + 1)


def _history_payment(invoice: QboInvoice) -> QboPayment:
    return QboPayment(
        id=invoice.history_payment_id,
        customer_id=invoice.customer_id,
        customer_name=invoice.customer_name,
        total=invoice.unexplained_paid,
        txn_date=invoice.updated.date(),
        created=invoice.updated,
        updated=invoice.updated,
        lines=[(invoice.id, invoice.unexplained_paid)],
        currency=invoice.currency,
    )


def _customers(query: Query) -> set[str] | None:
    for cond in query.where:
        if cond.field == "CustomerRef" and cond.op in ("=", "IN"):
            return {str(v) for v in cond.values}
    return None


def _matches(doc: QboPayment | QboCreditMemo, query: Query) -> bool:
    return all(c.matches(doc.field(c.field)) for c in query.where)


def _ordered(rows: list[Any], query: Query) -> list[Any]:
    rows.sort(key=lambda doc: int(doc.id))
    for name, descending in reversed(query.order_by):
        rows.sort(key=lambda doc: (doc.field(name) is None, doc.field(name)), reverse=descending)
    return rows


def _amount(value: object, name: str) -> Decimal:
    try:
        if isinstance(value, bool) or not isinstance(value, int | str | Decimal | float):
            raise InvalidOperation
        amount = Decimal(str(value))
    except InvalidOperation:
        raise PaymentRejected("2020", "Required param missing", f"{name} is missing") from None
    if not amount.is_finite() or amount < 0:
        raise _business(f"{name} must not be negative")
    return amount
