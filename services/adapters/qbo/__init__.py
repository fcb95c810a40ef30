"""QuickBooks Online: the adapter (``QboClient``), its requests (``session``), its OAuth2
(``auth``), Intuit's faults (``faults``), documents (``documents``), the digest's listing
pages (``listing``) and the evidence reads (``evidence``)."""

from services.adapters.qbo.client import QboClient
from services.adapters.qbo.documents import to_invoice
from services.adapters.qbo.evidence import quote

__all__ = ["QboClient", "quote", "to_invoice"]
