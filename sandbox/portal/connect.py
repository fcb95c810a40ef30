"""The fake billing portal: an HTTP server implementing ``docs/portal-api.yaml``.

Its syncs really pull from QuickBooks Online (the fake one, in the sandbox) over HTTP::

    qbo = QboState.seeded(now)
    async with serving(create_qbo_app(qbo)) as qbo_url:
        portal = connected_to_qbo(qbo, qbo_url, now)
        async with serving(create_portal_app(portal)) as portal_url:
            ...  # the API is at f"{portal_url}/api/v1", key in X-API-Key (DEFAULT_API_KEY)
        await portal.aclose()  # cancels syncs still running

Against any QBO-compatible server, use ``PortalState.seeded(now, qbo_base_url=..., ...)``.
Modules: ``portal_state`` (data and knobs), ``portal_qbo`` (the portal's QBO client),
``portal_sync`` (full sync and record resync), ``portal_app`` (the HTTP endpoints),
``portal_wire`` (JSON bodies and errors), ``portal_gate`` (counters, latency, faults, API key).
"""

from __future__ import annotations

from datetime import datetime

from sandbox.portal.app import BASE, create_portal_app
from sandbox.portal.records import Fault
from sandbox.portal.state import DEFAULT_API_KEY, PortalState
from sandbox.qbo.app import QboState
from sandbox.scenarios import MATCHING_COUNT

PORTAL_QBO_CLIENT_ID = "sandbox-portal"
PORTAL_QBO_CLIENT_SECRET = "sandbox-portal-secret"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"

__all__ = [
    "BASE",
    "DEFAULT_API_KEY",
    "PORTAL_QBO_CLIENT_ID",
    "Fault",
    "PortalState",
    "connected_to_qbo",
    "create_portal_app",
]


def connected_to_qbo(
    qbo: QboState,
    qbo_url: str,
    now: datetime,
    *,
    matching: int = MATCHING_COUNT,
    api_key: str = DEFAULT_API_KEY,
) -> PortalState:
    """The seeded portal, connected to the fake QBO served at ``qbo_url`` as its own OAuth
    app (registered here), seeded at the same ``now`` and ``matching`` as the QBO."""
    refresh_token = qbo.register_client(PORTAL_QBO_CLIENT_ID, PORTAL_QBO_CLIENT_SECRET)
    return PortalState.seeded(
        now,
        qbo_base_url=qbo_url,
        qbo_token_url=qbo_url.rstrip("/") + TOKEN_PATH,
        qbo_realm_id=qbo.realm_id,
        qbo_client_id=PORTAL_QBO_CLIENT_ID,
        qbo_client_secret=PORTAL_QBO_CLIENT_SECRET,
        qbo_refresh_token=refresh_token,
        matching=matching,
        api_key=api_key,
    )
