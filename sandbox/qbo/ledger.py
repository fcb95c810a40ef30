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


def _not_found() -> PaymentRejected:
    return PaymentRejected(
        "610",
        "Object Not Found",
        "Object Not Found : Something you're trying to use has been made inactive. "
        "Check the fields with accounts, customers, items, vendors or employees.",
    )


def _snapshot(doc: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: list(v) if isinstance(v := getattr(doc, name), list) else v for name in names}


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
        """Create a payment from an Intuit Payment document, or raise PaymentRejected. Lines
        link an invoice (paid) or a credit memo (its credit used): a $0 payment that links
        both applies the credit to the invoice."""
        customer = (body.get("CustomerRef") or {}).get("value")
        if not customer:
            raise PaymentRejected(
                "2020", "Required param missing", "Required parameter CustomerRef is missing"
            )
        total = _amount(body.get("TotalAmt"), "TotalAmt")
        lines, credits = self._lines(body.get("Line") or [], str(customer))
        self._check_total(total, lines, credits)
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
        )
        self._apply(payment, lines, credits, now)
        self.payments[payment.id] = payment
        return payment

    def update_payment(self, body: dict[str, Any], *, now: datetime) -> QboPayment:
        """``POST /payment?operation=update``: the payment named by ``Id``, at the current
        ``SyncToken`` (else 5010). Sparse: only the fields sent change; a ``Line`` sent
        replaces every line, and the invoices' balances and credits follow."""
        payment = self.payments.get(str(body.get("Id") or ""))
        if payment is None:
            raise _not_found()
        if str(body.get("SyncToken")) != str(payment.sync_token):
            raise PaymentRejected(
                "5010",
                "Stale Object Error",
                "Stale Object Error : You and root were working on this at the same time. "
                "root finished before you did, so your work was not saved.",
            )
        if body.get("sparse") is not True and "TotalAmt" not in body:
            raise PaymentRejected(
                "2020", "Required param missing", "Required parameter TotalAmt is missing"
            )
        total = _amount(body["TotalAmt"], "TotalAmt") if "TotalAmt" in body else payment.total
        if "Line" not in body:
            self._check_total(total, [], [], already=payment)
            payment.total = total
        else:
            old = (list(payment.lines), list(payment.credits))
            saved = self._unapply(payment)
            try:
                lines, credits = self._lines(body.get("Line") or [], payment.customer_id)
                self._check_total(total, lines, credits)
            except PaymentRejected:
                self._restore(saved)
                payment.lines, payment.credits = old
                raise
            payment.total = total
            self._apply(payment, lines, credits, now)
        payment.sync_token += 1
        payment.updated = now
        return payment

    def _lines(
        self, raw: list[dict[str, Any]], customer: str
    ) -> tuple[list[tuple[QboInvoice, Decimal]], list[tuple[QboCreditMemo, Decimal]]]:
        lines: list[tuple[QboInvoice, Decimal]] = []
        credits: list[tuple[QboCreditMemo, Decimal]] = []
        for line in raw:
            linked = [
                t
                for t in line.get("LinkedTxn") or []
                if t.get("TxnType") in ("Invoice", "CreditMemo")
            ]
            if len(linked) != 1:
                raise _business("Each payment line must link one invoice or credit memo")
            if linked[0].get("TxnType") == "CreditMemo":
                credits.append(self._credit_line(line, linked[0], customer))
            else:
                lines.append(self._line(line, customer))
        return lines, credits

    def _line(self, line: dict[str, Any], customer: str) -> tuple[QboInvoice, Decimal]:
        amount = _amount(line.get("Amount"), "Line.Amount")
        linked = [t for t in line.get("LinkedTxn") or [] if t.get("TxnType") == "Invoice"]
        invoice = self.invoices.by_id(str(linked[0].get("TxnId")))
        if invoice is None:
            raise _not_found()
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

    def _credit_line(
        self, line: dict[str, Any], link: dict[str, Any], customer: str
    ) -> tuple[QboCreditMemo, Decimal]:
        amount = _amount(line.get("Amount"), "Line.Amount")
        memo = self.credit_memos.get(str(link.get("TxnId")))
        if memo is None:
            raise _not_found()
        if memo.customer_id != customer:
            raise _business(f"Credit memo {memo.doc_number} belongs to another customer")
        if amount > memo.remaining:
            raise _business(
                f"The credit of {amount} is more than what is left on credit memo "
                f"{memo.doc_number} ({memo.remaining})"
            )
        return memo, amount

    @staticmethod
    def _check_total(
        total: Decimal,
        lines: list[tuple[QboInvoice, Decimal]],
        credits: list[tuple[QboCreditMemo, Decimal]],
        *,
        already: QboPayment | None = None,
    ) -> None:
        paid = sum((a for _, a in lines), Decimal(0))
        used = sum((a for _, a in credits), Decimal(0))
        if already is not None:
            paid = sum((a for _, a in already.lines), Decimal(0))
            used = sum((a for _, a in already.credits), Decimal(0))
        if paid - used > total:
            raise _business("The amounts applied are more than the payment's total")
        if used > paid:
            raise _business("A credit can only be applied to an invoice of the same payment")

    def _apply(
        self,
        payment: QboPayment,
        lines: list[tuple[QboInvoice, Decimal]],
        credits: list[tuple[QboCreditMemo, Decimal]],
        now: datetime,
    ) -> None:
        payment.lines = [(invoice.id, amount) for invoice, amount in lines]
        payment.credits = [(memo.id, amount) for memo, amount in credits]
        target = lines[0][0].id if lines else ""
        for memo, amount in credits:
            memo.applied.append((target, amount))
            memo.updated, memo.sync_token = now, memo.sync_token + 1
        for invoice, amount in lines:
            self._link(invoice, payment.id, "Payment", amount, now)

    def _unapply(self, payment: QboPayment) -> list[tuple[Any, dict[str, Any]]]:
        """Take the payment's lines off (balances and credits back); what it changed, to
        restore if the new lines are refused."""
        saved: list[tuple[Any, dict[str, Any]]] = []
        for invoice_id, amount in payment.lines:
            invoice = self.invoices.by_id(invoice_id)
            if invoice is None:
                continue
            saved.append((invoice, _snapshot(invoice, ("balance", "links"))))
            invoice.balance += amount
            kept = [link for link in invoice.links or () if link[:2] != (payment.id, "Payment")]
            invoice.links = kept or None
        target = payment.lines[0][0] if payment.lines else ""
        for memo_id, amount in payment.credits:
            memo = self.credit_memos[memo_id]
            saved.append((memo, _snapshot(memo, ("applied",))))
            if (target, amount) in memo.applied:
                memo.applied.remove((target, amount))
        payment.lines, payment.credits = [], []
        self.invoices.changed()
        return saved

    def _restore(self, saved: list[tuple[Any, dict[str, Any]]]) -> None:
        for doc, fields in saved:
            for name, value in fields.items():
                setattr(doc, name, value)
        self.invoices.changed()

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
