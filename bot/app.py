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
from bot.listeners.actions import (
    on_check_again,
    on_confirm_accounted,
    on_input,
    on_mark_accounted,
    on_pick_sync_date,
    on_resync_anyway,
    on_resync_full,
    on_resync_invoice,
    on_start_full_resync,
)
from bot.listeners.commands import invoice_command
from bot.listeners.fixes import on_approve_fix, on_prepare_fix, on_reject_fix
from bot.payloads import CheckActions
from bot.redact import install_redaction
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
        # its work to the runner (bot/tasks.py), so that is at once, in both modes, and what
        # it acked with (a usage error, the help) is the reply's body.
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )

    app.use(SkipRedeliveries(container.metrics))
    app.use(FormBodies())
    app.use(CheckActions(container))
    app.use(InjectDeps(container))
    app.command(settings.slack_command)(invoice_command)
    app.action(ActionId.RESYNC_INVOICE.value)(on_resync_invoice)
    app.action(ActionId.RESYNC_FULL.value)(on_resync_full)
    app.action(ActionId.PICK_SYNC_DATE.value)(on_pick_sync_date)
    app.action(ActionId.START_FULL_RESYNC.value)(on_start_full_resync)
    app.action(ActionId.RESYNC_ANYWAY.value)(on_resync_anyway)
    app.action(ActionId.CHECK_AGAIN.value)(on_check_again)
    app.action(ActionId.MARK_ACCOUNTED.value)(on_mark_accounted)
    app.action(ActionId.CONFIRM_ACCOUNTED.value)(on_confirm_accounted)
    app.action(ActionId.ACCOUNTED_REASON.value)(on_input)
    app.action(ActionId.PREPARE_FIX.value)(on_prepare_fix)
    app.action(ActionId.APPROVE_FIX.value)(on_approve_fix)
    app.action(ActionId.REJECT_FIX.value)(on_reject_fix)

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
