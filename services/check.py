"""Use case: compare one invoice across the accounting package and the portal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from services.comparison import DEFAULT_MONEY_TOLERANCE, Comparison, Evidence, Verdict
from services.diagnosis import diagnose
from services.evidence import Read, gather_evidence
from services.models import Integration, utcnow
from services.ports import AccountingSystem, BillingPortal
from services.reconcile import compare


async def check_invoice(
    number: str,
    *,
    accounting: AccountingSystem,
    portal: BillingPortal,
    clock: Callable[[], datetime] = utcnow,
    tolerance: Decimal = DEFAULT_MONEY_TOLERANCE,
    explain: bool = True,
) -> Comparison:
    """Read both sides at the same time, each with its evidence in one request (QuickBooks'
    batch, the portal's invoice with its payments), and compare them: one round trip.

    Out of sync (and ``explain``), the comparison carries its ``diagnosis``; a second round
    trip reads only what the first could not (the customer's payments the first time this
    invoice is seen, the invoice the portal links to when it is another). A difference
    within ``tolerance`` is ``Verdict.ROUNDING``, diagnosed without any further read.
    """
    comparison, _ = await examine_invoice(
        number,
        accounting=accounting,
        portal=portal,
        clock=clock,
        tolerance=tolerance,
        explain=explain,
    )
    return comparison


async def examine_invoice(
    number: str,
    *,
    accounting: AccountingSystem,
    portal: BillingPortal,
    clock: Callable[[], datetime] = utcnow,
    tolerance: Decimal = DEFAULT_MONEY_TOLERANCE,
    explain: bool = True,
    always_gather: bool = False,
) -> tuple[Comparison, Evidence | None]:
    """``check_invoice``, with the evidence it read (None when it read none). With
    ``always_gather`` the evidence is read even when the balances match (to see whether
    money a resync took out of view has been accounted for since)."""
    reading, (mirrored, portal_payments), integrations = await asyncio.gather(
        accounting.read_invoice(number),
        portal.get_invoice_with_payments(number),
        portal.list_integrations(),  # cached by the adapter
    )
    acct = reading.invoice
    integration = pick_integration(
        integrations, mirrored.integration_id if mirrored is not None else None
    )
    comparison = compare(
        number,
        acct,
        mirrored,
        checked_at=clock(),
        portal_last_sync_at=integration.last_successful_sync_at if integration else None,
        tolerance=tolerance,
    )
    if comparison.verdict is Verdict.NOT_FOUND or not (explain or always_gather):
        return comparison, None
    if comparison.out_of_sync or always_gather:
        found = await gather_evidence(
            [comparison],
            accounting=accounting,
            portal=portal,
            tolerance=tolerance,
            also=(number,) if always_gather else (),
            read={number: Read(reading, portal_payments)},
        )
        evidence = found[number]
    elif comparison.verdict is Verdict.IN_SYNC:
        return comparison, None
    else:
        evidence = Evidence(comparison=comparison, tolerance=tolerance)
    if not explain or comparison.verdict is Verdict.IN_SYNC:
        return comparison, evidence
    return comparison.model_copy(update={"diagnosis": diagnose(evidence)}), evidence


def pick_integration(
    integrations: list[Integration], integration_id: str | None
) -> Integration | None:
    """The invoice's own integration, else the first accounting integration."""
    for integration in integrations:
        if integration.id == integration_id:
            return integration
    for integration in integrations:
        if integration.kind == "accounting":
            return integration
    return integrations[0] if integrations else None
