"""The fake portal's HTTP surface: the Portal REST API of ``docs/portal-api.yaml``."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.portal_state import (
    Fault,
    Integration,
    Invoice,
    PortalState,
    ProcessedRecord,
    RecordResync,
    SyncRun,
    new_id,
)
from sandbox.portal_sync import run_full_sync, run_record_resync

BASE = "/api/v1"
KEY_RE = re.compile(r"[A-Za-z0-9]([ -.0-~]*[!-.0-~])?")
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CURSOR_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
INT_RE = re.compile(r"[0-9]{1,9}")
RECORD_TYPES = ("invoice", "company", "contact")
INVOICE_STATUSES = ("open", "paid", "void")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, **(extra or {})}}
    return JSONResponse(body, status, headers)


def invalid(message: str) -> ApiError:
    return ApiError(422, "validation_error", message)


# Wire format.
def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def invoice_json(inv: Invoice) -> dict[str, Any]:
    return {
        "number": inv.number,
        "external_id": inv.external_id,
        "customer": {"id": inv.customer_id, "name": inv.customer_name},
        "total": money(inv.total),
        "balance": money(inv.balance),
        "currency": inv.currency,
        "status": inv.status,
        "integration_id": inv.integration_id,
        "last_synced_at": ts(inv.last_synced_at),
        "updated_at": ts(inv.updated_at),
    }


def integration_json(integration: Integration) -> dict[str, Any]:
    return {
        "id": integration.id,
        "name": integration.name,
        "provider": integration.provider,
        "kind": integration.kind,
        "last_successful_sync_at": ts(integration.last_successful_sync_at),
    }


def run_json(run: SyncRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "integration_id": run.integration_id,
        "status": run.status,
        "sync_from": run.sync_from.isoformat(),
        "created_at": ts(run.created_at),
        "started_at": ts(run.started_at),
        "finished_at": ts(run.finished_at),
        "records_processed": len(run.records),
        "error": run.error,
    }


def record_json(record: ProcessedRecord) -> dict[str, Any]:
    return {
        "record_type": record.record_type,
        "number": record.number,
        "action": record.action,
        "balance_before": money(record.balance_before),
        "balance_after": money(record.balance_after),
        "message": record.message,
    }


def resync_json(resync: RecordResync) -> dict[str, Any]:
    return {
        "id": resync.id,
        "record_type": resync.record_type,
        "record_id": resync.record_id,
        "status": resync.status,
        "created_at": ts(resync.created_at),
        "finished_at": ts(resync.finished_at),
        "error": resync.error,
    }


# Request parsing.
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


# Endpoints.
async def get_invoice(request: Request) -> Response:
    number = path_param(request, "number", KEY_RE, 21)
    invoice = state_of(request).invoices.get(number)
    if invoice is None:
        raise ApiError(404, "not_found", f"No invoice {number}.")
    return JSONResponse(invoice_json(invoice))


async def lookup_invoices(request: Request) -> Response:
    body = await json_object(request, ("numbers",))
    numbers = body["numbers"]
    if not isinstance(numbers, list) or not 1 <= len(numbers) <= 1000:
        raise invalid("numbers must be a list of 1 to 1000 invoice numbers.")
    for number in numbers:
        if not isinstance(number, str) or len(number) > 21 or not KEY_RE.fullmatch(number):
            raise invalid("numbers must hold invoice numbers (strings of 1 to 21 characters).")
    invoices = state_of(request).invoices
    unique = list(dict.fromkeys(numbers))
    found = [invoice_json(invoices[n]) for n in unique if n in invoices]
    missing = [n for n in unique if n not in invoices]
    return JSONResponse({"invoices": found, "missing": missing})


async def list_invoices(request: Request) -> Response:
    status = request.query_params.get("status")
    if status is not None and status not in INVOICE_STATUSES:
        raise invalid("status must be open, paid or void.")
    limit = int_param(request, "limit", default=100, maximum=1000)
    after = decode_cursor(request, "n:")
    page, last = state_of(request).page_invoices(status=status, after=after, limit=limit)
    cursor = None if last is None else encode_cursor(f"n:{last}")
    return JSONResponse({"invoices": [invoice_json(i) for i in page], "next_cursor": cursor})


async def list_integrations(request: Request) -> Response:
    integrations = state_of(request).integrations.values()
    return JSONResponse({"integrations": [integration_json(i) for i in integrations]})


def integration_of(request: Request) -> Integration:
    integration_id = path_param(request, "integration_id", ID_RE, 64)
    integration = state_of(request).integrations.get(integration_id)
    if integration is None:
        raise ApiError(404, "not_found", f"No integration {integration_id}.")
    return integration


async def get_integration(request: Request) -> Response:
    return JSONResponse(integration_json(integration_of(request)))


async def start_sync(request: Request) -> Response:
    state = state_of(request)
    integration = integration_of(request)
    body = await json_object(request, ("sync_from",))
    raw = body["sync_from"]
    try:
        if not isinstance(raw, str) or not DATE_RE.fullmatch(raw):
            raise ValueError
        sync_from = date.fromisoformat(raw)
    except ValueError:
        raise invalid("sync_from must be a date (YYYY-MM-DD).") from None
    now = state.clock()
    if sync_from > now.date():
        raise invalid("sync_from must not be in the future.")
    running = state.active_run(integration.id)
    if running is not None:
        message = f"A full sync of {integration.id} is already {running.status}."
        raise ApiError(409, "sync_already_running", message, run_id=running.id)
    run = SyncRun(
        id=new_id("run"), integration_id=integration.id, sync_from=sync_from, created_at=now
    )
    state.runs[run.id] = run
    state.spawn(run_full_sync(state, run))
    return JSONResponse(run_json(run), 202, {"Location": f"{BASE}/sync-runs/{run.id}"})


async def list_sync_runs(request: Request) -> Response:
    integration = integration_of(request)
    limit = int_param(request, "limit", default=10, maximum=100)
    runs = state_of(request).runs_of(integration.id)[:limit]
    return JSONResponse({"sync_runs": [run_json(r) for r in runs]})


async def syncs(request: Request) -> Response:
    if request.method == "POST":
        return await start_sync(request)
    return await list_sync_runs(request)


def run_of(request: Request) -> SyncRun:
    run_id = path_param(request, "run_id", ID_RE, 64)
    run = state_of(request).runs.get(run_id)
    if run is None:
        raise ApiError(404, "not_found", f"No sync run {run_id}.")
    return run


async def get_sync_run(request: Request) -> Response:
    return JSONResponse(run_json(run_of(request)))


async def list_records(request: Request) -> Response:
    run = run_of(request)
    limit = int_param(request, "limit", default=100, maximum=1000)
    after = decode_cursor(request, "o:")
    if after is not None and not INT_RE.fullmatch(after):
        raise invalid("cursor is not one this API returned.")
    offset = int(after or 0)
    page = run.records[offset : offset + limit]
    more = offset + limit < len(run.records)
    cursor = encode_cursor(f"o:{offset + limit}") if more else None
    return JSONResponse({"records": [record_json(r) for r in page], "next_cursor": cursor})


async def start_record_resync(request: Request) -> Response:
    state = state_of(request)
    body = await json_object(request, ("record_type", "record_id"))
    record_type, record_id = body["record_type"], body["record_id"]
    if record_type not in RECORD_TYPES:
        raise invalid("record_type must be invoice, company or contact.")
    if not isinstance(record_id, str) or len(record_id) > 64 or not KEY_RE.fullmatch(record_id):
        raise invalid("record_id must be a string of 1 to 64 characters.")
    resync = RecordResync(new_id("rr"), record_type, record_id, state.clock())
    state.resyncs[resync.id] = resync
    state.spawn(run_record_resync(state, resync))
    return JSONResponse(
        resync_json(resync), 202, {"Location": f"{BASE}/record-resyncs/{resync.id}"}
    )


async def get_record_resync(request: Request) -> Response:
    resync_id = path_param(request, "resync_id", ID_RE, 64)
    resync = state_of(request).resyncs.get(resync_id)
    if resync is None:
        raise ApiError(404, "not_found", f"No record resync {resync_id}.")
    return JSONResponse(resync_json(resync))


ROUTES = [
    Route("/invoices/lookup", lookup_invoices, methods=["POST"]),
    Route("/invoices/{number}", get_invoice, methods=["GET"]),
    Route("/invoices", list_invoices, methods=["GET"]),
    Route("/integrations", list_integrations, methods=["GET"]),
    Route("/integrations/{integration_id}", get_integration, methods=["GET"]),
    Route("/integrations/{integration_id}/syncs", syncs, methods=["GET", "POST"]),
    Route("/sync-runs/{run_id}", get_sync_run, methods=["GET"]),
    Route("/sync-runs/{run_id}/records", list_records, methods=["GET"]),
    Route("/record-resyncs", start_record_resync, methods=["POST"]),
    Route("/record-resyncs/{resync_id}", get_record_resync, methods=["GET"]),
]


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, extra=exc.extra)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def on_crash(request: Request, exc: Exception) -> Response:
    return error_response(500, "internal_error", "The portal failed.")


class DroppedConnection(Exception):
    """Raised after half an answer so that the server closes the connection."""


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging the deliberate drop as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


async def drop(send: Send) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"invoices": [', "more_body": True})
    raise DroppedConnection("connection dropped on purpose (fault injection)")


_quiet_drops = _QuietDrops()


class Gate:
    """Counts requests, adds latency, plays injected faults, checks the API key."""

    def __init__(self, app: ASGIApp, state: PortalState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state, path = self.state, scope["path"]
        state.requests[f"{scope['method']} {path}"] += 1
        request_id = secrets.token_hex(8)
        fault = await self._delay_and_fault(path)
        if fault is not None and fault.kind == "drop":
            await drop(send)
        response = await self._refusal(scope, fault)
        if response is not None:
            response.headers["X-Request-Id"] = request_id
            await response(scope, receive, send)
            return

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)

    async def _delay_and_fault(self, path: str) -> Fault | None:
        if self.state.latency > 0:
            await asyncio.sleep(self.state.latency)
        return self.state.take_fault(path)

    async def _refusal(self, scope: Scope, fault: Fault | None) -> Response | None:
        state = self.state
        if fault is not None and fault.kind == "timeout":
            await asyncio.sleep(state.timeout_seconds)
            return error_response(504, "timeout", "The portal timed out.")
        if fault is not None:
            headers = (
                {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
            )
            code = "rate_limited" if fault.status == 429 else "internal_error"
            return error_response(fault.status, code, "Injected fault.", headers=headers)
        key = dict(scope["headers"]).get(b"x-api-key", b"")
        if not hmac.compare_digest(key, state.api_key.encode()):
            return error_response(401, "unauthorized", "Missing or invalid API key.")
        return None


def create_portal_app(state: PortalState) -> Starlette:
    """The fake portal as an ASGI app; serve it with ``sandbox.server.serving``."""
    app = Starlette(
        routes=[Mount(BASE, routes=ROUTES)],
        exception_handlers={
            ApiError: on_api_error,
            HTTPException: on_http_error,
            Exception: on_crash,
        },
    )
    app.state.portal = state
    app.add_middleware(Gate, state=state)
    logging.getLogger("uvicorn.error").addFilter(_quiet_drops)
    return app
