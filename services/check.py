"""Use case: compare one invoice across the accounting package and the portal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from services.diagnosis import diagnose
from services.evidence import gather_evidence
from services.models import (
    DEFAULT_MONEY_TOLERANCE,
    Comparison,
    Evidence,
    Integration,
    Verdict,
    utcnow,
)
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
    """Read both sides at the same time (one round trip, not two) and compare them.

    Out of sync (and ``explain``): a second round trip gathers the evidence from both
    systems at once, and the comparison carries its ``diagnosis``. A difference within
    ``tolerance`` is ``Verdict.ROUNDING``, diagnosed without any further read.
    """
    acct, mirrored, integrations = await asyncio.gather(
        accounting.get_invoice(number),
        portal.get_invoice(number),
        portal.list_integrations(),
    )
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
    if not explain or comparison.verdict in (Verdict.IN_SYNC, Verdict.NOT_FOUND):
        return comparison
    if comparison.out_of_sync:
        found = await gather_evidence(
            [comparison], accounting=accounting, portal=portal, tolerance=tolerance
        )
        evidence = found[number]
    else:
        evidence = Evidence(comparison=comparison, tolerance=tolerance)
    return comparison.model_copy(update={"diagnosis": diagnose(evidence)})


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
