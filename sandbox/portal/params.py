"""Parsing the fake portal's requests: cursors, query and path parameters, JSON bodies,
and the checks every endpoint makes first (media type, idempotency key, query names)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.portal.idempotency import check_key
from sandbox.portal.state import PortalState
from sandbox.portal.wire import ApiError, invalid

KEY_RE = re.compile(r"[A-Za-z0-9]([ -~]*[!-~])?")
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
CURSOR_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")
INT_RE = re.compile(r"[0-9]{1,9}")
TIMESTAMP_RE = re.compile(
    r"(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<h>[0-9]{2}):(?P<m>[0-9]{2}):(?P<s>[0-9]{2})"
    r"(?:\.(?P<frac>[0-9]{1,30}))?Z"
)
Handler = Callable[[Request], Awaitable[Response]]


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(request: Request, prefix: str) -> str | None:
    raw = request.query_params.get("cursor")
    if raw is None:
        return None
    try:
        if not CURSOR_RE.fullmatch(raw):
            raise ValueError
        value = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid("cursor is not one this API returned.") from None
    if not value.startswith(prefix):
        raise invalid("cursor is not one this API returned.")
    return value[len(prefix) :]


def int_param(request: Request, name: str, *, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not INT_RE.fullmatch(raw) or not 1 <= int(raw) <= maximum:
        raise invalid(f"{name} must be an integer from 1 to {maximum}.")
    return int(raw)


def path_param(request: Request, name: str, pattern: re.Pattern[str], max_length: int) -> str:
    value = str(request.path_params[name])
    if len(value) > max_length or not pattern.fullmatch(value):
        raise invalid(f"{name} is not valid.")
    return value


async def json_object(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise invalid("The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object.")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise invalid(f"Unknown field: {unknown[0][:64]}.")
    missing = [name for name in allowed if name not in body]
    if missing:
        raise invalid(f"Missing field: {missing[0]}.")
    return body


def state_of(request: Request) -> PortalState:
    state: PortalState = request.app.state.portal
    return state


def timestamp_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        found = TIMESTAMP_RE.fullmatch(raw)
        if not found:
            raise ValueError
        second = min(int(found["s"]), 59)  # RFC 3339 allows a leap second
        micros = int((found["frac"] or "0")[:6].ljust(6, "0"))
        day = date.fromisoformat(found["day"])
        return datetime(
            day.year, day.month, day.day, int(found["h"]), int(found["m"]), second, micros, UTC
        )
    except ValueError:
        raise invalid(f"{name} must be a UTC time (YYYY-MM-DDTHH:MM:SSZ).") from None


async def invoice_numbers(request: Request) -> list[str]:
    body = await json_object(request, ("numbers",))
    numbers = body["numbers"]
    if not isinstance(numbers, list) or not 1 <= len(numbers) <= 1000:
        raise invalid("numbers must be a list of 1 to 1000 invoice numbers.")
    for number in numbers:
        if not isinstance(number, str) or len(number) > 21 or not KEY_RE.fullmatch(number):
            raise invalid("numbers must hold invoice numbers (strings of 1 to 21 characters).")
    return list(dict.fromkeys(numbers))


def endpoint(handler: Handler, *params: str) -> Handler:
    """The handler, refusing query parameters other than ``params`` (as it refuses unknown
    body fields)."""

    async def checked(request: Request) -> Response:
        if request.method == "POST":  # 415 comes before 422 (error precedence)
            media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != "application/json":
                message = "The body must be sent as application/json."
                raise ApiError(415, "unsupported_media_type", message)
            check_key(request)  # on the look-ups too, which need not remember it
        unknown = sorted(set(request.query_params) - set(params))
        if unknown:
            raise invalid(f"Unknown query parameter: {unknown[0][:64]!r}.")
        return await handler(request)

    return checked
