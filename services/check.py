"""Use case: compare one invoice across the accounting package and the portal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from services.models import Comparison, Integration, utcnow
from services.ports import AccountingSystem, BillingPortal
from services.reconcile import compare


async def check_invoice(
    number: str,
    *,
    accounting: AccountingSystem,
    portal: BillingPortal,
    clock: Callable[[], datetime] = utcnow,
) -> Comparison:
    """Read both sides at the same time (one round trip, not two) and compare them."""
    acct, mirrored, integrations = await asyncio.gather(
        accounting.get_invoice(number),
        portal.get_invoice(number),
        portal.list_integrations(),
    )
    integration = pick_integration(
        integrations, mirrored.integration_id if mirrored is not None else None
    )
    return compare(
        number,
        acct,
        mirrored,
        checked_at=clock(),
        portal_last_sync_at=integration.last_successful_sync_at if integration else None,
    )


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
