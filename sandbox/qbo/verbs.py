"""The console's ``qbo`` verbs: changes a person makes by hand in QuickBooks Online.

qbo pay N AMOUNT      a payment recorded by hand, applied to invoice N
qbo change N AMOUNT   invoice N's amount edited (what was paid stays paid)
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from sandbox.portal.state import PortalState
from sandbox.qbo.cdc import change_invoice_amount, record_payment_by_hand
from sandbox.qbo.ledger import PaymentRejected
from sandbox.qbo.state import QboState

USAGE = "qbo pay N AMOUNT [REF] | qbo change N AMOUNT, e.g. qbo change 11003 99.00"


def run_qbo_verb(state: QboState, args: list[str], *, portal: PortalState | None = None) -> str:
    """Make the change; the line the console prints about it. ``qbo pay`` without a
    reference takes the one of a portal payment pending on the invoice for that amount (the
    client's remittance, copied by the bookkeeper): the portal's transfer is then refused
    as a duplicate, as happens in real life."""
    if not (len(args) == 3 or (len(args) == 4 and args[0] == "pay")) or args[0] not in (
        "pay",
        "change",
    ):
        return USAGE
    verb, number, raw = args[0], args[1], args[2].removeprefix("$")
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        amount = Decimal(-1)
    if not amount.is_finite() or amount < 0 or (verb == "pay" and amount == 0):
        return f"(sandbox) Not an amount: {raw}. {USAGE}"
    amount = amount.quantize(Decimal("0.01"))
    try:
        if verb == "pay":
            ref = args[3] if len(args) == 4 else _remittance(portal, number, amount)
            payment = record_payment_by_hand(state, number, amount, reference=ref)
            return (
                f"(sandbox) In QuickBooks, {payment.recorded_by} recorded a payment of "
                f"${amount} on invoice {number} by hand (payment Id {payment.id}"
                + (f", ref {ref})" if ref else ")")
            )
        invoice = change_invoice_amount(state, number, amount)
    except KeyError:
        return f"(sandbox) QuickBooks has no invoice {number}. {USAGE}"
    except PaymentRejected as exc:
        return f"(sandbox) QuickBooks refused it: {exc.detail}"
    return (
        f"(sandbox) In QuickBooks, invoice {number} was edited: ${invoice.balance} due "
        f"(total ${invoice.total})"
    )


def _remittance(portal: PortalState | None, number: str, amount: Decimal) -> str | None:
    if portal is None:
        return None
    for payment in portal.payments.get(number, []):
        if payment.transfer_status == "pending" and payment.amount == amount:
            return payment.reference
    return None
