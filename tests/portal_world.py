"""The fake QBO and the fake portal running together over loopback, for the portal tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sandbox.portal.connect import (
    PORTAL_QBO_CLIENT_ID,
    PortalState,
    connected_to_qbo,
    create_portal_app,
)
from sandbox.qbo.app import QboState, create_qbo_app
from sandbox.server import serving

CLIENT_ID = PORTAL_QBO_CLIENT_ID


@dataclass
class World:
    qbo: QboState
    portal: PortalState
    qbo_url: str
    portal_url: str
    now: datetime


@contextlib.asynccontextmanager
async def running_world(
    *, matching: int = 40, sync_duration: float = 0.1, record_resync_seconds: float = 0.05
) -> AsyncIterator[World]:
    """Both fake servers on loopback, seeded at the same moment; the portal's syncs pull
    from the fake QBO over HTTP with their own OAuth client."""
    now = datetime.now(UTC)
    qbo = QboState.seeded(now, matching=matching)
    async with serving(create_qbo_app(qbo)) as qbo_url:
        portal = connected_to_qbo(qbo, qbo_url, now, matching=matching)
        portal.sync_duration = sync_duration
        portal.record_resync_seconds = record_resync_seconds
        try:
            async with serving(create_portal_app(portal)) as portal_url:
                yield World(qbo, portal, qbo_url, portal_url, now)
        finally:
            await portal.aclose()
