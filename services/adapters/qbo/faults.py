"""QuickBooks Online faults, in every shape Intuit sends them, turned into typed errors.

Shapes: the data service's ``{"Fault": {"Error": [{"Message", "Detail", "code"}], "type"}}``
(also inside an HTTP 200), the gateway's lower-case ``{"fault": {"error": [...]}}`` and the
XML ``<IntuitResponse><Fault><Error code=...>`` page that a 429 sometimes is.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import msgspec

from services.errors import (
    AuthenticationError,
    ClosedPeriodError,
    NotFoundError,
    StaleObjectError,
    ThrottledError,
    TransientError,
    UpstreamError,
    ValidationFault,
)

SYSTEM = "QuickBooks Online"
CLOSED_PERIOD_CODE = "6200"
"""A write dated in a closed period ("Account Period Closed"); the code is unconfirmed, so
the message's words are matched too."""


@dataclass(frozen=True)
class Fault:
    type: str | None
    code: str | None
    message: str
    detail: str | None = None


_JSON = msgspec.json.Decoder(float_hook=Decimal)


def parse_json(content: bytes | str) -> Any:
    """JSON with every non-integer number as an exact Decimal (never a float); ValueError
    (``msgspec.DecodeError``) when it is not JSON."""
    return _JSON.decode(content)


def fault_from_json(body: Any) -> Fault | None:
    """The first error of a ``Fault`` or ``fault`` object, or None when there is none."""
    if not isinstance(body, dict):
        return None
    raw = body.get("Fault", body.get("fault"))
    if not isinstance(raw, dict):
        return None
    errors = raw.get("Error", raw.get("error"))
    first: dict[str, Any] = {}
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
    message = first.get("Message", first.get("message"))
    detail = first.get("Detail", first.get("detail"))
    code = first.get("code", first.get("Code"))
    kind = raw.get("type")
    return Fault(
        type=str(kind) if kind is not None else None,
        code=str(code) if code is not None else None,
        message=str(message) if message else str(kind or "Fault"),
        detail=str(detail) if detail else None,
    )


def fault_from_xml(text: str) -> Fault | None:
    """The first ``Error`` of an ``IntuitResponse`` XML fault page, or None."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:  # never expand entities from outside
        return None
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    fault = next((el for el in root.iter() if _local(el.tag) == "Fault"), None)
    if fault is None:
        return None
    error = next((el for el in fault.iter() if _local(el.tag) == "Error"), None)
    if error is None:
        return Fault(type=fault.get("type"), code=None, message="Fault")
    fields = {_local(child.tag): (child.text or "").strip() for child in error}
    return Fault(
        type=fault.get("type"),
        code=error.get("code"),
        message=fields.get("Message") or "Fault",
        detail=fields.get("Detail") or None,
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def fault_from_response(response: httpx.Response) -> Fault | None:
    text = response.text
    stripped = text.lstrip()
    if stripped.startswith("<"):
        return fault_from_xml(stripped)
    try:
        return fault_from_json(parse_json(response.content))
    except ValueError:
        return None


def error_for(
    status: int, fault: Fault | None, *, request_id: str | None, wait: float | None = None
) -> UpstreamError:
    """The typed error for an HTTP status and the fault its body carried (if any)."""
    code = fault.code if fault else None
    kind = (fault.type or "").lower() if fault else ""
    text = fault.message if fault else f"HTTP {status}"
    if fault and fault.detail:
        text = f"{text}: {fault.detail}"
    common: dict[str, Any] = {
        "system": SYSTEM,
        "status": status,
        "code": code,
        "request_id": request_id,
    }
    if status == 429 or code == "3001":
        return ThrottledError(text, retry_after=wait, **common)
    if status == 401 or code == "3200" or kind in ("authentication", "authenticationfault"):
        return AuthenticationError(fault.message if fault else "HTTP 401", **common)
    if code == "610" or status == 404:
        return NotFoundError(text, **common)
    if code == "5010":
        return StaleObjectError(text, **common)
    if code == CLOSED_PERIOD_CODE or "period closed" in text.lower():
        return ClosedPeriodError(text, **common)
    if status >= 500 or kind in ("systemfault", "service"):
        return TransientError(text, retry_after=wait, **common)
    if kind == "validationfault" or status in (400, 422):
        return ValidationFault(text, **common)
    return UpstreamError(text, **common)
