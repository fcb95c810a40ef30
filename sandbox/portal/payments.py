"""The fake portal's payment run: clients pay in the portal, the portal posts each payment
to QuickBooks Online (``POST /payment``) and keeps QBO's answer: posted, or failed with
the reason QBO gave (a duplicate, an invoice already paid, deleted or void...)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sandbox.portal.ledger import Payment
from sandbox.portal.qbo_client import QboClient, QboError
from sandbox.portal.records import CENT, new_id
from sandbox.portal.state import PortalState

_DUPLICATE = re.compile(r"DocNumber=(?P<ref>.+?) is assigned to TxnType=\w+ with TxnId=(?P<id>\w+)")


async def take_payment(
    state: PortalState,
    number: str,
    amount: Decimal,
    *,
    reference: str,
    paid_at: datetime | None = None,
) -> Payment:
    """A client pays ``amount`` on invoice ``number`` in the portal: the portal's balance
    drops at once, then the payment goes to QBO. Returns it with its transfer status."""
    invoice = state.invoices[number]
    payment = Payment(
        id=new_id("pay"),
        invoice_number=number,
        reference=reference,
        amount=amount.quantize(CENT),
        currency=invoice.currency,
        paid_at=paid_at or state.clock(),
        invoice_external_id=invoice.external_id,
        customer_id=invoice.customer_id,
    )
    invoice.balance -= payment.amount
    invoice.status = "paid" if invoice.balance <= 0 else invoice.status
    invoice.updated_at = state.clock()
    state.payments.setdefault(number, []).append(payment)
    if state.transfer_delay > 0:  # pending for a while: the run comes back for it
        task = asyncio.get_running_loop().create_task(_transfer_later(state))
        state.transfers.add(task)
        task.add_done_callback(state.transfers.discard)
        return payment
    await transfer_pending(state)
    return payment


async def _transfer_later(state: PortalState) -> int:
    await asyncio.sleep(state.transfer_delay)
    return await transfer_pending(state)


async def wait_for_transfers(state: PortalState) -> None:
    """Until every payment waiting for its transfer has been tried."""
    while state.transfers:
        await asyncio.gather(*state.transfers, return_exceptions=True)


async def transfer_pending(state: PortalState) -> int:
    """The payment run: post every pending payment to QBO, oldest first, once it has been
    pending ``transfer_delay`` seconds. Returns how many it tried. A run already going is
    waited for, not repeated."""
    async with state.payment_lock:
        due = state.clock() - timedelta(seconds=state.transfer_delay)
        pending = sorted(
            (p for p in state.pending_payments() if p.paid_at <= due), key=lambda p: p.paid_at
        )
        if not pending:
            return 0
        async with QboClient(state) as qbo:
            for payment in pending:
                if not await _transfer(state, qbo, payment):
                    break  # QBO is not answering: the rest wait for the next run
        return len(pending)


async def _transfer(state: PortalState, qbo: QboClient, payment: Payment) -> bool:
    """Post one payment; False when QBO did not answer (it stays pending)."""
    if not payment.invoice_external_id or not payment.customer_id:
        payment.transfer_status = "failed"
        payment.transfer_error = "The invoice is not linked to a QuickBooks invoice"
        return True
    try:
        created = await qbo.post_payment(_intuit_payment(payment))
    except QboError as exc:
        if exc.status is None or exc.status in (401, 429) or exc.status >= 500:
            return False
        payment.transfer_status = "failed"
        payment.transfer_error = reason(exc, payment)
    else:
        payment.transfer_status = "posted"
        payment.external_id = str(created.get("Id") or "") or None
    payment.transferred_at = state.clock()
    return True


def _intuit_payment(payment: Payment) -> dict[str, Any]:
    return {
        "CustomerRef": {"value": payment.customer_id},
        "TotalAmt": payment.amount,
        "PaymentRefNum": payment.reference,
        "TxnDate": payment.paid_at.date().isoformat(),
        "Line": [
            {
                "Amount": payment.amount,
                "LinkedTxn": [{"TxnId": payment.invoice_external_id, "TxnType": "Invoice"}],
            }
        ],
    }


def reason(exc: QboError, payment: Payment) -> str:
    """QBO's refusal in the portal's words."""
    if exc.code == "610":
        return f"QuickBooks has no invoice with Id {payment.invoice_external_id} (deleted?)"
    detail = exc.detail or ""
    duplicate = _DUPLICATE.search(detail)
    if exc.code == "6140" and duplicate:
        return (
            f"Duplicate reference: QuickBooks already has payment {duplicate['ref']} "
            f"(Id {duplicate['id']})"
        )
    if detail.startswith("Business Validation Error: "):
        return detail.removeprefix("Business Validation Error: ")
    return str(exc)


TRANSFER_DELAY = timedelta(minutes=5)
FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


def _order(payment: Payment) -> tuple[datetime, datetime, str]:
    """``GET /payments`` order: by transfer attempt; never tried (pending) last, by paid_at."""
    tried = payment.transferred_at
    return (tried, tried, payment.id) if tried else (FAR_FUTURE, payment.paid_at, payment.id)


def cursor_of(payment: Payment) -> str:
    first, second, pid = _order(payment)  # fixed-width times: the text sorts as they do
    return f"{first:%Y%m%d%H%M%S%f}|{second:%Y%m%d%H%M%S%f}|{pid}"


def page_payments(
    state: PortalState,
    *,
    status: str | None,
    since: datetime | None,
    after: str | None,
    limit: int,
) -> tuple[list[Payment], Payment | None]:
    """One page of payments in ``GET /payments`` order, after the cursor ``after`` (see
    ``cursor_of``); and the last one when more follow."""
    chosen = [
        p
        for payments in state.payments.values()
        for p in payments
        if (status is None or p.transfer_status == status)
        and (since is None or (p.transferred_at is not None and p.transferred_at >= since))
        and (after is None or cursor_of(p) > after)
    ]
    chosen.sort(key=_order)
    page = chosen[:limit]
    return page, (page[-1] if len(chosen) > limit else None)


async def run_seeded_history(state: PortalState) -> int:
    """The payment run of the seeded stories, dated as it happened: each transfer tried
    five minutes after the client paid. Their failures are days old, not news."""
    pending = state.pending_payments()
    await transfer_pending(state)
    for payment in pending:
        if payment.transferred_at is not None:
            payment.transferred_at = payment.paid_at + TRANSFER_DELAY
    return len(pending)
