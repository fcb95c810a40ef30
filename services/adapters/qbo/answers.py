"""A QuickBooks Online answer read: what the caller wants of a 2xx answer, or the typed
error any answer stands for (a fault inside a 200 included)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from services.adapters.qbo.faults import (
    SYSTEM,
    Fault,
    error_for,
    fault_from_json,
    fault_from_response,
    parse_json,
)
from services.adapters.qbo.listing import Page, read_page
from services.adapters.retries import retry_after
from services.errors import TransientError, UpstreamError

R = TypeVar("R")
Read = Callable[[bytes, str | None], tuple[R, Fault | None]]
"""A 2xx answer's content (and its ``intuit_tid``) to what the caller wants of it, and the
fault it carried."""


def query_parts(statement: str) -> dict[str, Any]:
    """The request parts of a query (POST, the statement as the body)."""
    return {"content": statement.encode(), "headers": {"Content-Type": "application/text"}}


def endpoint(path: str) -> str:
    """The endpoint's name for the log ("query", "invoice"), without Ids."""
    return path.split("/")[1] if "/" in path else path


def json_body(content: bytes, intuit_tid: str | None = None) -> tuple[dict[str, Any], Fault | None]:
    body = parse_json(content)
    fault = fault_from_json(body)
    if fault is None and not isinstance(body, dict):
        raise UpstreamError("unexpected answer", system=SYSTEM)
    return (body if isinstance(body, dict) else {}), fault


def listing_page(content: bytes, intuit_tid: str | None = None) -> tuple[Page, Fault | None]:
    page = read_page(content)
    return page, page.fault


def tagged_json(
    content: bytes, intuit_tid: str | None
) -> tuple[tuple[dict[str, Any], str | None], Fault | None]:
    """``json_body`` with the answer's ``intuit_tid`` (a write's, for the audit log)."""
    body, fault = json_body(content)
    return (body, intuit_tid), fault


def answer(response: httpx.Response, body: bytes, read: Read[R]) -> R:
    """What ``read`` makes of a 2xx answer, or the error the answer stands for."""
    request_id = response.headers.get("intuit_tid")
    status = response.status_code
    if not response.is_success:
        wait = retry_after(response.headers.get("retry-after"))
        raise error_for(status, fault_from_response(response), request_id=request_id, wait=wait)
    try:
        answer, fault = read(body, request_id)
    except ValueError:
        raise TransientError(
            "the answer was not JSON", system=SYSTEM, status=status, request_id=request_id
        ) from None
    except UpstreamError as exc:
        exc.status, exc.request_id = status, request_id
        raise
    if fault is not None:  # a fault inside a 200
        raise error_for(status, fault, request_id=request_id)
    return answer
