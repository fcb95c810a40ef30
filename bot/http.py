"""The HTTP app: Slack's requests (HTTP mode) through bolt's Starlette adapter, which checks
each request's signature and answers with what the listener acked; and in both modes
/healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.bootstrap import Container
from bot.flows.watch import watch_of
from bot.metrics import CONTENT_TYPE
from bot.socket import socket_state
from services.storage.stats import job_counts, ping

SLACK_PATH = "/slack/events"
QBO_WEBHOOK_PATH = "/quickbooks/webhooks"
MAX_WEBHOOK_BYTES = 1 << 20
"""A QuickBooks webhook body larger than this (1 MiB; Intuit's are a few KiB) is refused
(413) before its signature is checked, and never read past it."""
PROBE_TIMEOUT = 2.0
"""Seconds a health probe waits for the database."""

log = logging.getLogger(__name__)


def outcome(status: int) -> str:
    """What became of a Slack request over HTTP, by the status bolt answered with."""
    if status < 300:
        return "acked"
    if status == 401:
        return "refused_signature"
    return "client_error" if status < 500 else "server_error"


async def database_state(container: Container) -> str:
    try:
        await asyncio.wait_for(ping(container.db), PROBE_TIMEOUT)
    except Exception as exc:
        log.warning("health: database unreachable (%s)", type(exc).__name__)
        return "unreachable"
    return "ok"


async def capped_body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None when it is (or says it is) larger than ``limit`` bytes:
    read no further than that, whatever Content-Length says."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def missing_settings(container: Container) -> list[str]:
    """The names (never the values) of settings the bot cannot run without."""
    try:
        container.settings.check_secrets()
    except ValueError as exc:
        return str(exc).split(": ", 1)[-1].split(", ")
    return []


def build_http_app(bolt: AsyncApp, container: Container) -> Starlette:
    socket_mode = container.settings.socket_mode

    async def healthz(_: Request) -> Response:
        """Process up, database reachable, Slack connected (Socket Mode; n/a over HTTP)."""
        database = await database_state(container)
        slack = await socket_state(bolt) if socket_mode else "n/a"
        healthy = database == "ok" and slack != "disconnected"
        body = {
            "status": "ok" if healthy else "degraded",
            "database": database,
            "slack": slack,
            "mode": "socket" if socket_mode else "http",
            "background_tasks": len(container.tasks),
        }
        return JSONResponse(body, 200 if healthy else 503)

    async def readyz(_: Request) -> Response:
        """Ready for work: database reachable and every required setting present."""
        database = await database_state(container)
        missing = missing_settings(container)
        ready = database == "ok" and not missing
        body = {"status": "ready" if ready else "not ready", "database": database}
        if missing:
            body["missing_settings"] = missing  # type: ignore[assignment]
        return JSONResponse(body, 200 if ready else 503)

    async def metrics(_: Request) -> Response:
        try:
            counts = await asyncio.wait_for(job_counts(container.db), 5)
        except Exception as exc:  # the rest of the metrics are still worth serving
            log.warning("metrics: resync jobs not counted (%s)", type(exc).__name__)
            counts = None
        container.metrics.set_jobs(counts)
        return Response(container.metrics.exposition(), media_type=CONTENT_TYPE)

    async def quickbooks_webhooks(request: Request) -> Response:
        """Intuit's webhook: signature checked, events stored, then answered; the work
        follows the answer (bot.flows.watch)."""
        watch = watch_of(container)
        raw = await capped_body(request, MAX_WEBHOOK_BYTES)
        if raw is None:
            watch.events.labels("too_large").inc()
            return JSONResponse({"error": "body too large"}, 413)
        status, body = await watch.receive(raw, request.headers.get("intuit-signature"))
        return JSONResponse(body, status)

    routes = [
        Route(QBO_WEBHOOK_PATH, quickbooks_webhooks, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if not socket_mode:
        # In Socket Mode requests are not signed: never accept them over HTTP. First in
        # the list: Slack's requests are most of the traffic, and routes are tried in order.
        handler = AsyncSlackRequestHandler(bolt)
        requests = container.metrics.slack_requests

        async def slack_events(request: Request) -> Response:
            try:
                response = await handler.handle(request)
            except Exception as exc:
                # bolt reads the body before it checks the signature; one it cannot read
                # (never sent by Slack) fails there, having run nothing.
                log.warning("unreadable Slack request refused (%s)", type(exc).__name__)
                response = JSONResponse({"error": "malformed request"}, 400)
            requests.labels(outcome(response.status_code)).inc()
            return response

        routes.insert(0, Route(SLACK_PATH, slack_events, methods=["POST"]))
    return Starlette(routes=routes)
