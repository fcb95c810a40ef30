"""The billing portal: the adapter (``PortalClient``), its requests and error mapping
(``session``), its answers (``wire``, ``payments``), the digest's listing pages
(``listing``) and its particular errors (``errors``)."""

from services.adapters.portal.client import PortalClient
from services.adapters.portal.errors import SyncAlreadyRunning

__all__ = ["PortalClient", "SyncAlreadyRunning"]
