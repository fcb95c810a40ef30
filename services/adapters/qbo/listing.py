"""A page of the open-invoice listing (``SELECT * FROM Invoice WHERE Balance > '0' ...``),
decoded by msgspec into Structs that hold only the fields the digest keeps: the rest of each
~1.4 kB Intuit document is skipped by the decoder, never built. Amounts are decoded as
Decimal straight from the JSON text (never through float).

The Structs are ``gc=False`` (msgspec's option for objects that cannot be part of a
reference cycle: they hold only strings, Decimals, datetimes and each other), so Python's
collector does not track them. A page is a few thousand of them alive at once; tracked, they
were moved up the collector's generations while the page was read, and that growth set off
full collections of the whole process during a scan (100 ms and more each, the event loop
held meanwhile). The collector itself is left as it is."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import msgspec

from services.adapters.qbo.documents import to_cents, utc
from services.adapters.qbo.faults import SYSTEM, Fault, fault_from_json, parse_json
from services.errors import UpstreamError
from services.ports import Listed

log = logging.getLogger("services.adapters.qbo")


class _Customer(msgspec.Struct, gc=False):
    name: str | None = None


class _Currency(msgspec.Struct, gc=False):
    value: str | None = None


class _Meta(msgspec.Struct, gc=False):
    LastUpdatedTime: datetime | None = None


class _Invoice(msgspec.Struct, gc=False):
    Id: str | None = None
    DocNumber: str | None = None
    Balance: Decimal = Decimal(0)
    CustomerRef: _Customer | None = None
    CurrencyRef: _Currency | None = None
    MetaData: _Meta | None = None


class _Response(msgspec.Struct, gc=False):
    Invoice: list[_Invoice] = msgspec.field(default_factory=list)


class _Answer(msgspec.Struct, gc=False):
    QueryResponse: _Response | None = None
    Fault: msgspec.Raw = msgspec.Raw()  # empty when absent
    fault: msgspec.Raw = msgspec.Raw()


_DECODER = msgspec.json.Decoder(_Answer)


@dataclass(frozen=True, slots=True)
class Page:
    """One decoded page: the (number, listed) pairs, how many rows QBO sent (rows without a
    DocNumber included: they count for paging), and the fault it carried, if any."""

    pairs: list[tuple[str, Listed]]
    returned: int
    fault: Fault | None = None


def read_page(content: bytes) -> Page:
    """The page in ``content``; ValueError when it is not JSON, UpstreamError when an
    invoice is malformed."""
    try:
        answer = _DECODER.decode(content)
    except msgspec.ValidationError as exc:
        raise UpstreamError(f"malformed invoice in a listing page: {exc}", system=SYSTEM) from None
    raw_fault = answer.Fault or answer.fault
    if raw_fault:
        fault = fault_from_json({"Fault": parse_json(raw_fault)})
        return Page(pairs=[], returned=0, fault=fault)
    rows = answer.QueryResponse.Invoice if answer.QueryResponse is not None else []
    pairs: list[tuple[str, Listed]] = []
    for row in rows:
        number = row.DocNumber
        if not number:
            log.info("QuickBooks Online invoice without a DocNumber skipped (Id=%s)", row.Id)
            continue
        changed = row.MetaData.LastUpdatedTime if row.MetaData is not None else None
        if changed is None:
            raise UpstreamError(
                f"malformed invoice Id={row.Id!s:.30}: no LastUpdatedTime", system=SYSTEM
            )
        name = (row.CustomerRef.name if row.CustomerRef is not None else None) or ""
        currency = (row.CurrencyRef.value if row.CurrencyRef is not None else None) or None
        pairs.append((number, (to_cents(row.Balance), utc(changed), name, currency)))
    return Page(pairs=pairs, returned=len(rows))
