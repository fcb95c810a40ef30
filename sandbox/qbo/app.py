"""A fake QuickBooks Online that speaks Intuit's wire format, as a Starlette app.

    state = QboState.seeded(now)
    refresh_token = state.register_client("client-id", "client-secret")
    async with serving(create_qbo_app(state)) as url: ...

Routes: ``POST /oauth2/v1/tokens/bearer``, ``GET|POST /v3/company/{realm}/query`` (Invoice,
Payment, CreditMemo), ``GET /v3/company/{realm}/invoice/{id}`` and ``POST
/v3/company/{realm}/payment`` (validated as QBO does; ``?operation=update`` updates one at
its current SyncToken; ``?requestid=`` makes a write idempotent). Knobs live in ``state.knobs``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from functools import partial
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.qbo import cdc as qbo_cdc
from sandbox.qbo.invoices import QboInvoice
from sandbox.qbo.ledger import PaymentRejected
from sandbox.qbo.query import QueryError, parse_query
from sandbox.qbo.state import INTUIT_TZ, FaultKind, QboKnobs, QboState, Throttle
from sandbox.qbo.wire import (
    DroppedConnection,
    DroppedResponse,
    fault,
    gateway_auth_fault,
    intuit_time,
    json_response,
    new_tid,
    throttle_json,
    throttle_xml,
)

__all__ = ["INTUIT_TZ", "FaultKind", "QboKnobs", "QboState", "Throttle", "create_qbo_app"]

Handler = Callable[[Request], Awaitable[Response]]


class _IntuitTid:
    """Adds an ``intuit_tid`` header to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tid = new_tid().encode()

        async def send_with_tid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"intuit_tid", tid)]
            await send(message)

        await self.app(scope, receive, send_with_tid)


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging the deliberate DroppedConnection as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


_quiet_drops = _QuietDrops()


def create_qbo_app(state: QboState) -> Starlette:
    def now_text() -> str:
        return intuit_time(state.clock(), state.tz, millis=True)

    def validation_fault(detail: str, message: str = "Error parsing query") -> Response:
        return json_response(
            fault("ValidationFault", "4000", message, detail, time=now_text()), 400
        )

    def throttled() -> Response:
        headers = {}
        if state.knobs.retry_after is not None:
            headers["Retry-After"] = f"{state.knobs.retry_after:g}"
        if state.knobs.throttle_as_xml:
            return Response(
                throttle_xml(now_text()), 429, headers=headers, media_type="application/xml"
            )
        return json_response(throttle_json(), 429, headers)

    def unauthorized(detail: str) -> Response:
        return json_response(
            gateway_auth_fault(detail),
            401,
            {"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'},
        )

    async def injected(kind: FaultKind, request: Request) -> Response:
        if kind is FaultKind.THROTTLE:
            return throttled()
        if kind is FaultKind.EXPIRED_TOKEN:
            state.expire_access_tokens()
            return unauthorized("Token expired: the access token has expired")
        if kind is FaultKind.DROP:
            return DroppedResponse()
        if kind is FaultKind.TIMEOUT:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_disconnected(request), state.knobs.timeout_seconds)
            return Response("Gateway Timeout", 504, media_type="text/plain")
        system_fault = fault(
            "SystemFault",
            "10000",
            "An application error has occurred while processing your request",
            "System Failure Error: something went wrong on the server",
            time=now_text(),
        )
        if kind is FaultKind.FAULT_IN_200:
            return json_response(system_fault, 200)
        status = 503 if kind is FaultKind.UNAVAILABLE else 500
        return json_response(system_fault, status)

    async def api(request: Request, handler: Handler) -> Response:
        state.request_counts[request.url.path] += 1
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return unauthorized("Token invalid: no bearer token in the Authorization header")
        realm, problem = state.oauth.check_access(token.strip(), now=state.clock())
        if realm is None:
            return unauthorized(problem)
        if request.path_params["realm_id"] != realm:
            body = fault(
                "AuthorizationFault",
                "3100",
                "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                "The token is not authorized for this company (realm).",
                time=now_text(),
            )
            return json_response(body, 403)
        knobs = state.knobs
        if not state.throttle.try_acquire(
            per_minute=knobs.max_per_minute, concurrent=knobs.max_concurrent
        ):
            return throttled()
        try:
            if knobs.latency > 0:
                await asyncio.sleep(knobs.latency)
            kind = state.next_fault()
            if kind is not None:
                return await injected(kind, request)
            return await handler(request)
        finally:
            state.throttle.release()

    async def run_query(request: Request) -> Response:
        statement = request.query_params.get("query", "")
        if request.method == "POST":
            body = (await request.body()).decode("utf-8", errors="replace")
            statement = body if body.strip() else statement
        if not statement.strip():
            return validation_fault('QueryParserError: Encountered "<EOF>". Was expecting SELECT.')
        state.queries.append(statement)
        try:
            query = parse_query(statement, tz=state.tz)
        except QueryError as exc:
            return validation_fault(exc.detail, exc.message)
        result = state.run_query(query)
        if isinstance(result, int):
            return json_response({"QueryResponse": {"totalCount": result}, "time": now_text()})
        envelope: dict[str, object] = {}
        if result:
            envelope = {
                query.entity: [
                    doc.to_json(state.tz)
                    if isinstance(doc, QboInvoice)
                    else doc.to_intuit(state.tz)
                    for doc in result
                ],
                "startPosition": query.start_position,
                "maxResults": len(result),
            }
        return json_response({"QueryResponse": envelope, "time": now_text()})

    async def read_invoice(request: Request) -> Response:
        invoice = state.invoices.by_id(request.path_params["invoice_id"])
        if invoice is None:
            body = fault(
                "ValidationFault",
                "610",
                "Object Not Found",
                "Object Not Found : Something you're trying to use has been made inactive. "
                "Check the fields with accounts, customers, items, vendors or employees.",
                time=now_text(),
                element="",
            )
            return json_response(body, 400)
        return json_response({"Invoice": invoice.to_intuit(state.tz), "time": now_text()})

    async def write_payment(request: Request) -> Response:
        """Create, or with ``operation=update`` update, a payment; a ``requestid`` seen
        before gets the first answer again and writes nothing."""
        request_id = request.query_params.get("requestid")
        if request_id and request_id in state.write_answers:
            status, first = state.write_answers[request_id]
            return json_response(first, status)
        try:
            body = json.loads(await request.body(), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            return validation_fault("Request has invalid or unsupported property", "Bad request")
        if not isinstance(body, dict):
            return validation_fault("Request has invalid or unsupported property", "Bad request")
        update = request.query_params.get("operation") == "update"
        status, answer = 200, {}
        try:
            payment = state.update_payment(body) if update else state.receive_payment(body)
            answer = {"Payment": payment.to_intuit(state.tz), "time": now_text()}
            state.writes.append(body)
        except PaymentRejected as exc:
            status = 400
            answer = fault(
                "ValidationFault", exc.code, exc.message, exc.detail, time=now_text(), element=""
            )
        if request_id:
            state.write_answers[request_id] = (status, answer)
        return json_response(answer, status)

    async def payment_endpoint(request: Request) -> Response:
        return await api(request, write_payment)

    async def query_endpoint(request: Request) -> Response:
        return await api(request, run_query)

    async def invoice_endpoint(request: Request) -> Response:
        return await api(request, read_invoice)

    async def cdc_endpoint(request: Request) -> Response:
        return await api(request, partial(qbo_cdc.cdc, state))

    async def batch_endpoint(request: Request) -> Response:
        return await api(request, partial(qbo_cdc.batch, state))

    async def token_endpoint(request: Request) -> Response:
        state.request_counts[request.url.path] += 1
        client = _basic_auth(request.headers.get("authorization", ""))
        if client is None or not state.oauth.client_ok(*client):
            return json_response({"error": "invalid_client"}, 401)
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        grant_type = form.get("grant_type", [""])[0]
        refresh_token = form.get("refresh_token", [""])[0]
        if grant_type != "refresh_token":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if not refresh_token:
            return json_response({"error": "invalid_request"}, 400)
        grant = state.refresh_tokens(client[0], refresh_token)
        return json_response(grant.body, grant.status, {"Cache-Control": "no-store"})

    logging.getLogger("uvicorn.error").addFilter(_quiet_drops)
    routes = [
        Route("/oauth2/v1/tokens/bearer", token_endpoint, methods=["POST"]),
        Route("/v3/company/{realm_id}/query", query_endpoint, methods=["GET", "POST"]),
        Route("/v3/company/{realm_id}/invoice/{invoice_id}", invoice_endpoint, methods=["GET"]),
        Route("/v3/company/{realm_id}/payment", payment_endpoint, methods=["POST"]),
        Route("/v3/company/{realm_id}/cdc", cdc_endpoint, methods=["GET"]),
        Route("/v3/company/{realm_id}/batch", batch_endpoint, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(_IntuitTid)
    return app


def _basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


async def _disconnected(request: Request) -> None:
    """Return when the client has gone away."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
