"""The HTTP app: Slack's door (HTTP mode, bot/door.py), and in both modes /healthz, /readyz
and /metrics."""

from __future__ import annotations

import asyncio
import gc
import logging

from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.bootstrap import Container
from bot.door import SlackDoor
from bot.metrics import CONTENT_TYPE, METRICS, exposition, jobs_family
from bot.socket import socket_state
from services.storage.stats import job_counts, ping

SLACK_PATH = "/slack/events"
PROBE_TIMEOUT = 2.0
"""Seconds a health probe waits for the database."""

log = logging.getLogger(__name__)


def tune_gc() -> None:
    """For the bot's server process, once started: the objects alive now (modules, the
    container) are never scanned by the cyclic collector again, and young objects are
    collected less often. bolt and the flows allocate much per request; this keeps the
    collector's pauses rarer and shorter (measured when bolt still ran before the ack: p99
    3.6 -> 2.1 ms in bench/ack.py). Not for tests: a frozen object's cycles are never
    collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


async def database_state(container: Container) -> str:
    try:
        await asyncio.wait_for(ping(container.db), PROBE_TIMEOUT)
    except Exception as exc:
        log.warning("health: database unreachable (%s)", type(exc).__name__)
        return "unreachable"
    return "ok"


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
        families = list(METRICS.families())
        try:
            families.append(jobs_family(await asyncio.wait_for(job_counts(container.db), 5)))
        except Exception as exc:  # the rest of the metrics are still worth serving
            log.warning("metrics: resync jobs not counted (%s)", type(exc).__name__)
        return Response(exposition(families), media_type=CONTENT_TYPE)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if not socket_mode:
        # In Socket Mode requests are not signed: never accept them over HTTP. First in
        # the list: Slack's requests are most of the traffic, and routes are tried in order.
        routes.insert(0, Route(SLACK_PATH, SlackDoor(bolt, container).endpoint, methods=["POST"]))
    return Starlette(routes=routes)
