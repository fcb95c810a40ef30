"""The seeded sandbox world: one place that says which invoice is in which state.

Times are relative to the moment the sandbox is seeded, so the scenarios stay true
whatever day the demo or the tests run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sandbox.scenario_types import Paid, Scenario, Story
from sandbox.scenarios_causes import CAUSE_SCENARIOS

__all__ = [
    "BASIC_SCENARIOS",
    "CAUSE_SCENARIOS",
    "SCENARIOS",
    "Paid",
    "Scenario",
    "SeedInvoice",
    "Story",
]

REALM_ID = "9341453050000000"
INTEGRATION_ID = "int-qbo-1"
INTEGRATION_NAME = "QuickBooks Online (Best MSP)"
# The portal's last successful sync of the integration: its scheduled sync has not run
# for four days, so everything changed in QBO since then is stale in the portal.
LAST_SYNC_AGO = timedelta(days=4)
# The integration was connected to the portal two years ago: nothing in it is older.
CONNECTED_AGO = timedelta(days=730)


BASIC_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "11260",
        "58",
        "Best Tackle",
        Decimal("50.00"),
        Decimal("50.00"),
        Decimal("40.00"),
        timedelta(hours=1),
        "changed in QBO after the portal's last sync; a record resync fixes it",
    ),
    Scenario(
        "11261",
        "59",
        "Cool Cars",
        Decimal("120.00"),
        Decimal("120.00"),
        Decimal("100.00"),
        timedelta(hours=5),
        "record resync fails (stale QBO link); the full resync fixes it",
        stale_link=True,
        cause="invoice_recreated",
    ),
    Scenario(
        "11262",
        "60",
        "Dukes Basketball Camp",
        Decimal("75.00"),
        Decimal("75.00"),
        Decimal("60.00"),
        timedelta(days=3),
        "modified three days ago: a one-day full resync misses it, the bot's date does not",
    ),
    Scenario(
        "11263",
        "61",
        "Freeman Sporting Goods",
        Decimal("250.00"),
        Decimal("250.00"),
        None,
        timedelta(hours=3),
        "created in QBO after the last sync: missing from the portal",
    ),
    Scenario(
        "11264",
        "62",
        "Geeta Kalapatapu",
        Decimal("89.50"),
        Decimal("0.00"),
        Decimal("89.50"),
        timedelta(hours=20),
        "paid in QBO, still open in the portal",
    ),
)
"""The first five scenarios (the contract tests' world: ``causes=False``)."""

SCENARIOS: tuple[Scenario, ...] = (*BASIC_SCENARIOS, *CAUSE_SCENARIOS)
"""Every seeded scenario, each with the ``cause`` the bot's diagnosis names."""

MATCHING_COUNT = 300
"""Invoices 11000-11299 (minus the scenario numbers) match on both sides."""
DRIFT_EVERY = 50
"""In a larger world (``matching`` above ``MATCHING_COUNT``), one invoice in this many past
the first 300 is a stale copy: paid down by $10.00 in QuickBooks a day after the portal's
last sync. 3000 invoices give 54 of them, enough for the digest's CSV."""

CUSTOMERS = (
    ("1", "Amy's Bird Sanctuary"),
    ("2", "Bill's Windsurf Shop"),
    ("3", "Cool Cars"),
    ("4", "Diego Rodriguez"),
    ("5", "Dylan Sollfrank"),
    ("6", "Jeff's Jalopies"),
    ("7", "John Melton"),
    ("8", "Kookies by Kathy"),
    ("9", "Mark Cho"),
    ("10", "Paulsen Medical Supplies"),
    ("11", "Rago Travel Agency"),
    ("12", "Red Rock Diner"),
    ("13", "Rondonuwu Fruit and Vegi"),
    ("14", "Shara Barnett"),
    ("15", "Sonnenschein Family Store"),
    ("16", "Sushi by Katsuyuki"),
    ("17", "Travis Waldron"),
    ("18", "Video Games by Dan"),
    ("19", "Wedding Planning by Whitney"),
    ("20", "Weiskopf Consulting"),
)


@dataclass(frozen=True)
class SeedInvoice:
    number: str
    qbo_id: str
    customer_id: str
    customer: str
    total: Decimal
    qbo_balance: Decimal | None
    portal_balance: Decimal | None
    qbo_updated: datetime
    portal_synced: datetime
    portal_external_id: str | None
    story: Story | None = None


def scenarios(*, causes: bool = True) -> tuple[Scenario, ...]:
    """The seeded scenarios (without ``causes``: the first five alone)."""
    return SCENARIOS if causes else BASIC_SCENARIOS


def seed_invoices(
    now: datetime, *, matching: int = MATCHING_COUNT, causes: bool = True
) -> list[SeedInvoice]:
    """The whole seeded world as plain rows, used by both fake servers."""
    last_sync = now - LAST_SYNC_AGO
    rows: list[SeedInvoice] = []
    chosen = scenarios(causes=causes)
    scenario_numbers = {s.number for s in chosen}
    qbo_id = 1000
    for i in range(matching):
        number = str(11000 + i)
        if number in scenario_numbers:
            continue
        qbo_id += 1
        cust_id, cust = CUSTOMERS[i % len(CUSTOMERS)]
        total = Decimal(100 + (i * 37) % 900) + Decimal((i * 13) % 100) / 100
        balance = total if i % 3 else (total / 2).quantize(Decimal("0.01"))
        updated = last_sync - timedelta(days=5 + i % 50, minutes=i)
        in_qbo = balance
        if i >= MATCHING_COUNT and i % DRIFT_EVERY == 7:  # a stale copy in the portal
            in_qbo = balance - Decimal("10.00")
            updated = last_sync + timedelta(days=1, minutes=i % 600)
        rows.append(
            SeedInvoice(
                number,
                str(qbo_id),
                cust_id,
                cust,
                total,
                in_qbo,
                balance,
                updated,
                last_sync,
                str(qbo_id),
            )
        )
    for s in chosen:
        qbo_id += 1
        external = None if s.portal_balance is None else str(qbo_id)
        current = str(qbo_id)
        if s.stale_link:
            external = str(qbo_id + 5000)  # the Id of the invoice before it was recreated
        if s.story is not None and s.story.recreated:
            current = str(qbo_id + 5000)  # recreated after the portal linked qbo_id
        rows.append(
            SeedInvoice(
                s.number,
                current,
                s.customer_id,
                s.customer,
                s.total,
                s.qbo_balance,
                s.portal_balance,
                now - s.modified_ago,
                last_sync - timedelta(days=1),
                external,
                s.story,
            )
        )
    return rows
