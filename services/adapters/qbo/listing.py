"""A page of the open-invoice listing (``SELECT * FROM Invoice WHERE Balance > '0' ...``),
decoded by msgspec into Structs that hold only the fields the digest keeps: the rest of each
~1.4 kB Intuit document is skipped by the decoder, never built. Amounts are decoded as
Decimal straight from the JSON text (never through float)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import msgspec

from services.adapters.qbo.documents import amount, utc
from services.adapters.qbo.faults import SYSTEM, Fault, fault_from_json, parse_json
from services.errors import UpstreamError
from services.ports import Listed

log = logging.getLogger("services.adapters.qbo")


class _Ref(msgspec.Struct):
    value: str | None = None
    name: str | None = None


class _Meta(msgspec.Struct):
    LastUpdatedTime: datetime | None = None


class _Invoice(msgspec.Struct):
    Id: str | None = None
    DocNumber: str | None = None
    Balance: Decimal = Decimal(0)
    CustomerRef: _Ref | None = None
    CurrencyRef: _Ref | None = None
    MetaData: _Meta | None = None


class _Response(msgspec.Struct):
    Invoice: list[_Invoice] = msgspec.field(default_factory=list)


class _Answer(msgspec.Struct):
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
        if not row.DocNumber:
            log.info("QuickBooks Online invoice without a DocNumber skipped (Id=%s)", row.Id)
            continue
        changed = row.MetaData.LastUpdatedTime if row.MetaData is not None else None
        if changed is None:
            raise UpstreamError(
                f"malformed invoice Id={row.Id!s:.30}: no LastUpdatedTime", system=SYSTEM
            )
        name = (row.CustomerRef.name if row.CustomerRef is not None else None) or ""
        currency = row.CurrencyRef.value if row.CurrencyRef is not None else None
        listed = (amount(row.Balance), utc(changed), name, currency or None)
        pairs.append((row.DocNumber, listed))
    return Page(pairs=pairs, returned=len(rows))
