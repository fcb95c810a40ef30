"""HTTP mode: the Slack endpoint and health, on one Starlette app."""

from __future__ import annotations

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.bootstrap import Container

SLACK_PATH = "/slack/events"


def build_http_app(bolt: AsyncApp, container: Container) -> Starlette:
    handler = AsyncSlackRequestHandler(bolt)

    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(_: Request) -> Response:
        try:
            async with container.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            database = "ok"
        except Exception:
            database = "unreachable"
        status = 200 if database == "ok" else 503
        return JSONResponse(
            {"status": "ok" if status == 200 else "degraded", "database": database}, status
        )

    routes = [Route("/healthz", healthz, methods=["GET"])]
    if not container.settings.socket_mode:
        # In Socket Mode requests are not signed: never accept them over HTTP.
        routes.append(Route(SLACK_PATH, slack_events, methods=["POST"]))
    return Starlette(routes=routes)
