"""The fake billing portal: an HTTP server implementing ``docs/portal-api.yaml``.

Its syncs really pull from QuickBooks Online (the fake one, in the sandbox) over HTTP::

    state = PortalState.seeded(now, qbo_base_url=..., qbo_token_url=..., qbo_realm_id=...,
                               qbo_client_id=..., qbo_client_secret=..., qbo_refresh_token=...)
    async with serving(create_portal_app(state)) as url:
        ...  # the API is at f"{url}/api/v1", key in X-API-Key (DEFAULT_API_KEY)

Modules: ``portal_state`` (data and knobs), ``portal_qbo`` (the portal's QBO client),
``portal_sync`` (full sync and record resync), ``portal_app`` (the HTTP endpoints).
"""

from sandbox.portal_app import BASE, create_portal_app
from sandbox.portal_state import DEFAULT_API_KEY, Fault, PortalState

__all__ = ["BASE", "DEFAULT_API_KEY", "Fault", "PortalState", "create_portal_app"]
