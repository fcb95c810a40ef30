"""The seeded scenarios of every cause of a discrepancy (invoices 11265-11270): what
happened to each, played out by the fake systems' own mechanics (``Story``)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sandbox.scenario_types import Paid, Scenario, Story

DAY = timedelta(days=1)
CAUSE_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "11265",
        "63",
        "Harbor Dental",
        Decimal("50.00"),
        Decimal("50.00"),
        Decimal("40.00"),
        12 * DAY,
        "paid $10.00 in the portal (CB-4471); QBO refused the transfer as a duplicate: the "
        "payment had been entered by hand, applied to no invoice",
        cause="payment_not_transferred",
        story=Story(
            portal_payments=(Paid("CB-4471", Decimal("10.00"), 2 * DAY),),
            hand_payments=(Paid("CB-4471", Decimal("10.00"), 2 * DAY, qbo_id="9471"),),
        ),
    ),
    Scenario(
        "11266",
        "64",
        "Northwind Traders",
        Decimal("120.00"),
        Decimal("120.00"),
        Decimal("100.00"),
        timedelta(hours=7),
        "credit memo CM-1042 ($20.00) was applied when the portal synced; taken off the "
        "invoice in QBO since, it sits unapplied on the customer",
        cause="credit_not_applied",
        story=Story(credit_taken_off=("CM-1042", Decimal("20.00"))),
    ),
    Scenario(
        "11267",
        "65",
        "Orchid Florists",
        Decimal("90.00"),
        Decimal("90.00"),
        Decimal("60.00"),
        2 * DAY,
        "paid $30.00 in the portal (CB-4502, posted); the invoice was then deleted and "
        "recreated in QBO: the payment is unapplied, the portal links the deleted invoice",
        cause="invoice_recreated",
        story=Story(
            portal_payments=(Paid("CB-4502", Decimal("30.00"), 8 * DAY, qbo_id="9502"),),
            recreated=True,
        ),
    ),
    Scenario(
        "11268",
        "66",
        "Pinecrest Veterinary",
        Decimal("107.27"),
        Decimal("107.27"),
        Decimal("107.25"),
        20 * DAY,
        "tax rounded per line in QBO, on the total by the PSA: 2 cents apart",
        cause="rounding",
    ),
    Scenario(
        "11269",
        "67",
        "Quarry Road Garage",
        Decimal("155.00"),
        Decimal("140.00"),
        Decimal("155.00"),
        30 * DAY,
        "the portal shows $15.00 more and nothing on record explains it (a refund in the "
        "payment gateway?)",
        cause="unknown",
    ),
    Scenario(
        "11270",
        "68",
        "Redwood Realty",
        Decimal("45.00"),
        Decimal("0.00"),
        Decimal("45.00"),
        DAY,
        "voided in QBO, still open in the portal",
        cause="invoice_voided",
        story=Story(voided=True),
    ),
)
"""One scenario for each cause of a discrepancy the bot tells apart."""
"""One scenario for each cause of a discrepancy the bot tells apart."""
