"""What the fake QuickBooks Online puts on the wire: JSON with exact amounts, Intuit's
timestamps, Fault bodies in both casings, the XML throttle page and a dropped connection."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

JSON_TYPE = "application/json;charset=UTF-8"

_encode_string = json.encoder.encode_basestring_ascii


class JsonText(str):
    """JSON already written as ``dumps`` would write it (``QboInvoice.to_json``): ``dumps``
    puts it in as it is."""


def dumps(value: Any) -> str:
    """JSON text in which a Decimal is written as a bare number, exactly as it is."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, JsonText):
        out.append(value)
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as JSON")
        out.append(str(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(_encode_string(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


def intuit_time(value: datetime, tz: tzinfo, *, millis: bool = False) -> str:
    """``2014-09-19T13:16:17-08:00`` (``.082`` milliseconds for the envelope's ``time``)."""
    return value.astimezone(tz).isoformat(timespec="milliseconds" if millis else "seconds")


def new_tid() -> str:
    """An ``intuit_tid`` value: what Intuit support asks for."""
    return f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(dumps(body), status_code=status, headers=headers, media_type=JSON_TYPE)


def fault(
    kind: str, code: str, message: str, detail: str, *, time: str, element: str | None = None
) -> dict[str, Any]:
    """A data-service fault: ``{"Fault": {"Error": [...], "type": ...}, "time": ...}``."""
    error: dict[str, Any] = {"Message": message, "Detail": detail, "code": code}
    if element is not None:
        error["element"] = element
    return {"Fault": {"Error": [error], "type": kind}, "time": time}


def gateway_auth_fault(detail: str) -> dict[str, Any]:
    """The API gateway's 401 body, with lower-case keys and no ``time``."""
    return {
        "fault": {
            "error": [
                {
                    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "detail": detail,
                    "code": "3200",
                }
            ],
            "type": "AUTHENTICATION",
        }
    }


THROTTLE_MESSAGE = "message=ThrottleExceeded; errorCode=003001; statusCode=429"
THROTTLE_DETAIL = "The request limit was reached."


def throttle_json() -> dict[str, Any]:
    return {
        "Fault": {
            "Error": [{"Message": THROTTLE_MESSAGE, "Detail": THROTTLE_DETAIL, "code": "3001"}],
            "type": "SERVICE",
        }
    }


def throttle_xml(time: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{time}">'
        '<Fault type="SERVICE">'
        f'<Error code="3001"><Message>{THROTTLE_MESSAGE}</Message>'
        f"<Detail>{THROTTLE_DETAIL}</Detail></Error>"
        "</Fault></IntuitResponse>"
    )


class DroppedConnection(Exception):
    """Raised after a partial response so that the server closes the connection."""


class DroppedResponse(Response):
    """Sends the headers and half of the promised body, then fails: the server drops the
    connection and the client sees a truncated response."""

    def __init__(self) -> None:
        super().__init__(b'{"QueryResponse": {"Invoice": [', media_type=JSON_TYPE)
        self.headers["content-length"] = "4096"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": True})
        raise DroppedConnection("connection dropped on purpose (fault injection)")
