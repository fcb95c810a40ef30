"""Block Kit for the failed-payment alert: what failed, then the invoice's check (its cause,
evidence, steps and only the buttons that help). Pure."""

from __future__ import annotations

from datetime import date, datetime

from commands.blocks import Message, check_message, context, section
from commands.format import escape, fmt_day, fmt_moment, fmt_money
from services.comparison import Comparison
from services.models import PortalPayment

STEPS = (
    "In QuickBooks Online, find why the payment was refused (the reason above) and post the "
    "payment there by hand, or void the duplicate.",
    "In the portal, mark the failed transfer resolved so it is not retried.",
    "Then resync the invoice.",
)

IN_SYNC_NOTE = (
    ":information_source: The balances agree, but this payment is on record in the portal "
    "only: record it in QuickBooks (as a credit to the customer if the invoice was already "
    "paid) or refund the client."
)


def payment_line(payment: PortalPayment, customer: str | None = None) -> str:
    """The failure in one line; every value from the portal or QuickBooks escaped."""
    amount = fmt_money(payment.amount, payment.currency)
    whose = f"invoice {escape(payment.invoice_number)}"
    whose += f", {escape(customer)}" if customer else ""
    reason = escape(payment.error or "no reason given")
    return (
        f"Portal payment {escape(payment.reference)} of {amount} on {fmt_day(payment.paid_at)} "
        f"({whose}) failed to post to QuickBooks: {reason}"
    )


def alert_message(
    payment: PortalPayment,
    *,
    comparison: Comparison | None,
    now: datetime,
    full_resync_since: date,
) -> Message:
    """The alert: the failure first; the invoice's check under it when it could be read."""
    customer = comparison.customer_name if comparison else None
    line = payment_line(payment, customer)
    head = section(
        f":rotating_light: *A portal payment failed to transfer*\n{line}.\n"
        "The portal counts the payment and QuickBooks does not: do not resync this invoice "
        "until it is posted or dismissed in QuickBooks, or the payment drops out of view."
    )
    text = f"Payment failed to transfer: {line}."
    if comparison is None:
        steps = "\n".join(f"{i}. {step}" for i, step in enumerate(STEPS, 1))
        blocks = [
            head,
            section(f"*To fix it in QuickBooks first*\n{steps}"),
            context(
                f"Alerted {fmt_moment(now)}. I could not read the invoice itself just "
                f"now: `/invoice check {escape(payment.invoice_number)}` shows it."
            ),
        ]
        return Message(text=text, blocks=blocks)
    check = check_message(comparison, now=now, full_resync_since=full_resync_since)
    blocks = [head, *check.blocks[:-1]]
    if not comparison.out_of_sync:
        blocks.append(section(IN_SYNC_NOTE))
    footer = context(f"Alerted {fmt_moment(now)}, as the portal reported the failure")
    return Message(text=text, blocks=[*blocks, footer])
