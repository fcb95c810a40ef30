"""The fake portal's HTTP surface: the Portal REST API of ``docs/portal-api.yaml``."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from sandbox.kill import KillAfter
from sandbox.portal.gate import Gate, quiet_drops
from sandbox.portal.idempotency import IdempotencyStore, idempotent
from sandbox.portal.params import (
    DATE_RE,
    ID_RE,
    INT_RE,
    KEY_RE,
    Handler,
    decode_cursor,
    encode_cursor,
    endpoint,
    int_param,
    invoice_numbers,
    json_object,
    path_param,
    state_of,
    timestamp_param,
)
from sandbox.portal.payments import cursor_of, page_payments, transfer_pending
from sandbox.portal.records import Integration, RecordResync, SyncRun, new_id
from sandbox.portal.state import PortalState
from sandbox.portal.sync import run_full_sync, run_record_resync
from sandbox.portal.wire import (
    ApiError,
    company_json,
    contact_json,
    error_response,
    integration_json,
    invalid,
    invoice_json,
    invoice_page_body,
    payment_json,
    record_json,
    resync_json,
    run_json,
)

BASE = "/api/v1"
MAX_PAYMENTS = 1000
"""Payments in one look-up answer, at most."""
RECORD_TYPES = ("invoice", "company", "contact")
INVOICE_STATUSES = ("open", "paid", "void")
TRANSFER_STATUSES = ("pending", "posted", "failed")


# Endpoints.
async def get_invoice(request: Request) -> Response:
    state = state_of(request)
    include = request.query_params.get("include")
    if include is not None and not state.embeds_payments:  # as a 1.1 portal answers
        raise invalid("Unknown query parameter: 'include'.")
    if include not in (None, "payments"):
        raise invalid("include must be payments.")
    number = path_param(request, "number", KEY_RE, 21)
    invoice = state.invoices.get(number)
    if invoice is None:
        raise ApiError(404, "not_found", f"No invoice {number}.")
    if include is None:
        return JSONResponse(invoice_json(invoice))
    await transfer_pending(state)  # the payment run goes first: answers are current
    payments = [payment_json(p) for p in state.payments.get(number, [])]
    return JSONResponse({**invoice_json(state.invoices[number]), "payments": payments})


async def lookup_invoices(request: Request) -> Response:
    unique = await invoice_numbers(request)
    invoices = state_of(request).invoices
    found = [invoice_json(invoices[n]) for n in unique if n in invoices]
    missing = [n for n in unique if n not in invoices]
    return JSONResponse({"invoices": found, "missing": missing})


async def invoice_payments(request: Request) -> Response:
    number = path_param(request, "number", KEY_RE, 21)
    state = state_of(request)
    if number not in state.invoices:
        raise ApiError(404, "not_found", f"No invoice {number}.")
    await transfer_pending(state)  # the payment run goes first: answers are current
    payments = [payment_json(p) for p in state.payments.get(number, [])]
    return JSONResponse({"invoice_number": number, "payments": payments})


async def lookup_payments(request: Request) -> Response:
    numbers = await invoice_numbers(request)
    state = state_of(request)
    await transfer_pending(state)
    payments: list[dict[str, Any]] = []
    deferred: list[str] = []
    for number in (n for n in numbers if n in state.invoices):
        theirs = state.payments.get(number, [])
        if deferred or len(payments) + len(theirs) > MAX_PAYMENTS:
            deferred.append(number)  # whole invoices only: ask again for these
            continue
        payments += [payment_json(p) for p in theirs]
    missing = [n for n in numbers if n not in state.invoices]
    return JSONResponse({"payments": payments, "missing": missing, "deferred": deferred})


async def list_invoices(request: Request) -> Response:
    status = request.query_params.get("status")
    if status is not None and status not in INVOICE_STATUSES:
        raise invalid("status must be open, paid or void.")
    limit = int_param(request, "limit", default=100, maximum=1000)
    after = decode_cursor(request, "n:")
    state = state_of(request)
    if "updated_since" in request.query_params and not state.embeds_payments:
        raise invalid("Unknown query parameter: 'updated_since'.")  # a 1.1 portal
    since = timestamp_param(request, "updated_since")
    page, last = state.page_invoices(status=status, after=after, limit=limit, since=since)
    cursor = None if last is None else encode_cursor(f"n:{last}")
    return Response(invoice_page_body(page, cursor), media_type="application/json")


async def list_payments(request: Request) -> Response:
    status = request.query_params.get("transfer_status")
    if status is not None and status not in TRANSFER_STATUSES:
        raise invalid("transfer_status must be pending, posted or failed.")
    since = timestamp_param(request, "transferred_since")
    limit = int_param(request, "limit", default=100, maximum=1000)
    after = decode_cursor(request, "p:")
    state = state_of(request)
    await transfer_pending(state)  # the payment run goes first: answers are current
    page, last = page_payments(state, status=status, since=since, after=after, limit=limit)
    cursor = None if last is None else encode_cursor(f"p:{cursor_of(last)}")
    return JSONResponse({"payments": [payment_json(p) for p in page], "next_cursor": cursor})


async def dismiss_payment(request: Request) -> Response:
    """Dismiss Syncing: a failed transfer marked resolved; no payments endpoint lists it
    from then on."""
    payment_id = path_param(request, "payment_id", ID_RE, 64)
    await json_object(request, ())
    state = state_of(request)
    await transfer_pending(state)  # the payment run goes first, as for every payments answer
    for number, payments in state.payments.items():
        for payment in payments:
            if payment.id != payment_id:
                continue
            if payment.transfer_status != "failed":
                message = f"Payment {payment_id} is {payment.transfer_status}."
                raise ApiError(409, "not_failed", message)
            state.payments[number] = [p for p in payments if p.id != payment_id]
            state.dismissed.append(payment)
            return JSONResponse(payment_json(payment))
    raise ApiError(404, "not_found", f"No payment {payment_id}.")


async def list_integrations(request: Request) -> Response:
    integrations = ordered_integrations(state_of(request))
    return JSONResponse({"integrations": [integration_json(i) for i in integrations]})


def ordered_integrations(state: PortalState) -> list[Integration]:
    """The contract's order: the default integration first (the one a record resync of an
    invoice the portal does not have yet looks in), then the others by id."""
    default = state.default_integration()
    rest = sorted((i for i in state.integrations.values() if i is not default), key=lambda i: i.id)
    return ([default] if default is not None else []) + rest


def integration_of(request: Request) -> Integration:
    integration_id = path_param(request, "integration_id", ID_RE, 64)
    integration = state_of(request).integrations.get(integration_id)
    if integration is None:
        raise ApiError(404, "not_found", f"No integration {integration_id}.")
    return integration


async def get_integration(request: Request) -> Response:
    return JSONResponse(integration_json(integration_of(request)))


async def get_company(request: Request) -> Response:
    company_id = path_param(request, "company_id", ID_RE, 64)
    company = state_of(request).companies.get(company_id)
    if company is None:
        raise ApiError(404, "not_found", f"No company {company_id}.")
    return JSONResponse(company_json(company))


async def get_contact(request: Request) -> Response:
    contact_id = path_param(request, "contact_id", ID_RE, 64)
    contact = state_of(request).contacts.get(contact_id)
    if contact is None:
        raise ApiError(404, "not_found", f"No contact {contact_id}.")
    return JSONResponse(contact_json(contact))


async def start_sync(request: Request) -> Response:
    state = state_of(request)
    path_param(request, "integration_id", ID_RE, 64)  # 422 before 404 (error precedence)
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
    integration = integration_of(request)
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
        if request.query_params:
            raise invalid("Starting a sync takes no query parameters.")
        return await write(start_sync)(request)
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
    active = state.active_resync(record_type, record_id)
    if active is not None:
        message = f"A resync of {record_type} {record_id} is already {active.status}."
        raise ApiError(409, "resync_already_running", message, resync_id=active.id)
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


def _idempotency(request: Request) -> IdempotencyStore:
    store: IdempotencyStore = request.app.state.idempotency
    return store


def _clock(request: Request) -> datetime:
    return state_of(request).clock()


def write(handler: Handler) -> Handler:
    """A POST that changes something: ``Idempotency-Key`` honoured."""
    return idempotent(handler, _idempotency, _clock)


ROUTES = [
    Route("/invoices/lookup", endpoint(lookup_invoices), methods=["POST"]),
    Route("/invoices/{number:path}/payments", endpoint(invoice_payments), methods=["GET"]),
    Route("/invoices/{number:path}", endpoint(get_invoice, "include"), methods=["GET"]),
    Route("/payments/lookup", endpoint(lookup_payments), methods=["POST"]),
    Route(
        "/payments",
        endpoint(list_payments, "transfer_status", "transferred_since", "limit", "cursor"),
        methods=["GET"],
    ),
    Route("/payments/{payment_id}/dismiss", endpoint(write(dismiss_payment)), methods=["POST"]),
    Route(
        "/invoices",
        endpoint(list_invoices, "status", "updated_since", "limit", "cursor"),
        methods=["GET"],
    ),
    Route("/companies/{company_id}", endpoint(get_company), methods=["GET"]),
    Route("/contacts/{contact_id}", endpoint(get_contact), methods=["GET"]),
    Route("/integrations", endpoint(list_integrations), methods=["GET"]),
    Route("/integrations/{integration_id}", endpoint(get_integration), methods=["GET"]),
    Route(
        "/integrations/{integration_id}/syncs",
        endpoint(syncs, "limit"),
        methods=["GET", "POST"],
    ),
    Route("/sync-runs/{run_id}", endpoint(get_sync_run), methods=["GET"]),
    Route(
        "/sync-runs/{run_id}/records", endpoint(list_records, "limit", "cursor"), methods=["GET"]
    ),
    Route("/record-resyncs", endpoint(write(start_record_resync)), methods=["POST"]),
    Route("/record-resyncs/{resync_id}", endpoint(get_record_resync), methods=["GET"]),
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
    app.state.idempotency = IdempotencyStore()
    app.add_middleware(Gate, state=state)
    app.add_middleware(KillAfter, switch=state.kill_switch)  # outermost: after the answer
    logging.getLogger("uvicorn.error").addFilter(quiet_drops)
    return app
