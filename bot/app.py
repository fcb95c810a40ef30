"""The bolt app: every listener is registered here, in one place."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.response import BoltResponse

from bot.bootstrap import Container
from bot.delivery import SkipRedeliveries
from bot.errors import reply_for
from bot.forms import FormBodies
from bot.listeners.actions import acknowledge
from bot.listeners.commands import invoice_command
from bot.listeners.work import CLICKS, on_click
from bot.payloads import CheckActions
from bot.redact import install_redaction
from bot.work import InProcess
from commands.actions import ActionId

log = logging.getLogger(__name__)


class InjectDeps(AsyncMiddleware):
    """Puts the container in every listener's context (a class: bolt builds no keyword
    arguments for class middleware, which keeps the ack path short)."""

    def __init__(self, container: Container) -> None:
        self.container = container

    @property
    def name(self) -> str:
        return "InjectDeps"

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        req.context["deps"] = self.container
        return await next()


def build_app(container: Container) -> AsyncApp:
    settings = container.settings
    install_redaction(settings)
    app = AsyncApp(
        client=container.slack,
        # HTTP mode: bolt checks every request's signature (401 otherwise). Socket Mode:
        # requests come through the app's own WebSocket and are not signed.
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # The reply goes out when the listener returns. Every listener acks first and hands
        # its work off (bot/work.py: to the bounded runner, or to the worker process), so
        # that is at once, in both modes, and what it acked with (a usage error, the help)
        # is the reply's body.
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )

    app.use(SkipRedeliveries(container.metrics))
    app.use(FormBodies())
    app.use(CheckActions(container))
    app.use(InjectDeps(container))
    if container.work is None:
        container.work = InProcess(container)
    app.command(settings.slack_command)(invoice_command)
    for action in ActionId:
        app.action(action.value)(on_click if action in CLICKS else acknowledge)

    async def on_error(error: Exception, body: dict[str, Any], respond: Any) -> BoltResponse:
        return await tell_error(container, error, body, respond)

    app.error(on_error)
    return app


async def tell_error(
    container: Container, error: Exception, body: dict[str, Any], respond: Any
) -> BoltResponse:
    """Errors raised inside listeners (before a listener hands its work to the runner, whose
    errors go to that work's error hook): told privately; the request is still acked."""
    message = reply_for(error, container.metrics)
    if respond is not None and body.get("response_url"):
        try:
            await respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())
        except Exception:
            log.exception("could not tell the person about an error")
    return BoltResponse(status=200, body="")
