"""A page of the portal's open-invoice listing (``GET /invoices?status=open``), decoded by
msgspec into Structs that hold only the fields the digest keeps; the rest is skipped by the
decoder. Every field the digest reads is checked on the way (types, a time's offset).

The Structs are ``gc=False``, as in ``services.adapters.qbo.listing`` (which says why): they
hold only strings, datetimes and each other, and a page of them costs the collector nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec

from services.adapters.portal.wire import SYSTEM
from services.errors import UpstreamError
from services.models import money
from services.ports import Listed

Aware = Annotated[datetime, msgspec.Meta(tz=True)]


class _Customer(msgspec.Struct, gc=False):
    name: str


class _Invoice(msgspec.Struct, gc=False):
    number: str
    customer: _Customer
    balance: str
    currency: str | None
    last_synced_at: Aware | None


class _Page(msgspec.Struct, gc=False):
    invoices: list[_Invoice]
    next_cursor: str | None


_DECODER = msgspec.json.Decoder(_Page)


def read_page(content: bytes) -> tuple[list[tuple[str, Listed]], str | None]:
    """The (number, listed) pairs of a page and its next cursor (None on the last page)."""
    try:
        page = _DECODER.decode(content)
        pairs: list[tuple[str, Listed]] = []
        for row in page.invoices:
            synced = row.last_synced_at
            changed = None if synced is None else synced.astimezone(UTC)
            listed = (money(row.balance), changed, row.customer.name, row.currency)
            pairs.append((row.number, listed))
    except msgspec.ValidationError as exc:
        message = f"The portal answered in an unexpected shape ({exc})"
        raise UpstreamError(message, system=SYSTEM) from None
    except msgspec.DecodeError:
        raise UpstreamError("GET /invoices answered with invalid JSON", system=SYSTEM) from None
    except ArithmeticError as exc:  # a balance that is not a number
        raise UpstreamError(
            f"The portal answered in an unexpected shape (balance: {type(exc).__name__})",
            system=SYSTEM,
        ) from None
    return pairs, page.next_cursor
