"""HTTP mode's Slack endpoint: the signature is checked and the request acknowledged at the
door; bolt reads and runs it after the ack, as background work.

What Slack needs before the ack is only the proof that the request is Slack's (else 401)
and a 200 within 3 s. Everything else (reading the form or payload, matching a listener,
running it) happens after the response has left, held like any work born of a request
until a quiet moment (bot/tasks.py): a burst of commands is acknowledged at the speed of
the HTTP server. What a listener acks with (a usage error, the help) is delivered through
the request's ``response_url``, privately, as Slack shows an ack's text. Requests Slack
answers from the ack body alone (the Events API's ``url_verification`` challenge, which is
JSON) still go through bolt before the response; an ``ssl_check`` is answered 200 and run
nowhere. In Socket Mode none of this applies: bolt acks through the socket.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.bootstrap import Container
from bot.errors import reply_for
from bot.metrics import METRICS

log = logging.getLogger(__name__)

TIMESTAMP = "x-slack-request-timestamp"
SIGNATURE = "x-slack-signature"
WORK_NAME = "slack-request"
"""The name of a request's background work (bolt's dispatch)."""


def bolt_request(request: Request, raw: bytes) -> AsyncBoltRequest:
    """The request for bolt. bolt reads any form containing the word "payload" as a click
    and finds none: a slash command whose text says "payload" would get a 404. Such a
    form is read as the form it is (the signature still covers the raw body)."""
    req = to_async_bolt_request(request, raw)
    if not req.body and req.raw_body and req.content_type != "application/json":
        form = dict(parse_qsl(req.raw_body, keep_blank_values=True))
        if "payload" not in form:
            req.body = form
            req.context = build_async_context(AsyncBoltContext({}), form)
    return req


def outcome(status: int) -> str:
    if status < 300:
        return "acked"
    if status == 401:
        return "refused_signature"
    return "client_error" if status < 500 else "server_error"


class SlackDoor:
    def __init__(self, bolt: AsyncApp, container: Container) -> None:
        self.bolt, self.container = bolt, container
        secret = container.settings.slack_signing_secret.get_secret_value()
        self.verifier = SignatureVerifier(secret)

    async def endpoint(self, request: Request) -> Response:
        raw = await request.body()
        headers = request.headers
        if not self.signed(raw, headers.get(TIMESTAMP), headers.get(SIGNATURE)):
            METRICS.slack_requests.inc("refused_signature")
            return JSONResponse({"error": "invalid request"}, 401)
        tasks = self.container.tasks
        tasks.request_started()  # acks first: new background work waits for a quiet moment
        try:
            if headers.get("content-type", "").startswith("application/json"):
                response = await self.dispatch_now(request, raw)
            elif b"ssl_check=" in raw and _form(raw).get("ssl_check") == "1":
                response = Response(status_code=200)  # Slack checking its certificate
            else:
                work = self.dispatch(request, raw)
                tasks.spawn(work, name=WORK_NAME, on_error=self.failed, finish_at_stop=True)
                response = Response(status_code=200)
        finally:
            tasks.request_finished()
        METRICS.slack_requests.inc(outcome(response.status_code))
        return response

    def signed(self, raw: bytes, timestamp: str | None, signature: str | None) -> bool:
        """Slack's signature over this body, made in the last 5 minutes."""
        try:
            return self.verifier.is_valid(raw, timestamp, signature)
        except ValueError:  # a timestamp that is not a number
            return False

    async def dispatch_now(self, request: Request, raw: bytes) -> Response:
        """bolt, before the response: for requests whose answer is the ack's body."""
        try:
            return to_starlette_response(await self.bolt.async_dispatch(bolt_request(request, raw)))
        except Exception as exc:
            # bolt reads the payload's shape before it runs anything: a payload of the
            # wrong shape (never sent by Slack) is refused here, having run nothing.
            log.warning("malformed Slack request refused (%s)", type(exc).__name__)
            return JSONResponse({"error": "malformed request"}, 400)

    async def dispatch(self, request: Request, raw: bytes) -> None:
        """bolt, after the response: runs the listener; an ack with a message is shown to
        the person through ``response_url``, as Slack would have shown the ack. Counted
        again only when it went wrong (``malformed``, ``not_handled``: both were acked)."""
        try:
            req = bolt_request(request, raw)
        except Exception as exc:
            log.warning("malformed Slack request ignored (%s)", type(exc).__name__)
            METRICS.slack_requests.inc("malformed")
            return
        respond = _respond(req)
        try:
            response = await self.bolt.async_dispatch(req)
        except Exception as exc:  # bolt's own failure (listeners' go to bolt's error handler)
            await _show(respond, reply_for(exc).as_kwargs())
            return
        if response.status != 200:
            log.warning("Slack request not handled: bolt answered %d", response.status)
            METRICS.slack_requests.inc("not_handled")
            return
        await _show(respond, _message(response))

    async def failed(self, exc: BaseException) -> None:
        """Anything else that went wrong: logged with its traceback under a reference id."""
        reply_for(exc)


def _form(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))


ACK_FIELDS = frozenset({"text", "blocks", "attachments", "response_type", "thread_ts"})
"""What an ack's body may say that response_url says the same way."""


def _message(response: BoltResponse) -> dict[str, Any] | None:
    """What a listener acknowledged with, if anything."""
    if not response.body:
        return None
    try:
        body = json.loads(response.body)
    except ValueError:
        return {"text": response.body}
    if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
        return None
    return {k: v for k, v in body.items() if k in ACK_FIELDS}


def _respond(req: AsyncBoltRequest) -> AsyncRespond | None:
    """The request's ``response_url``, where the person can be answered privately."""
    url = req.context.response_url
    return AsyncRespond(response_url=url) if isinstance(url, str) and url else None


async def _show(respond: AsyncRespond | None, message: dict[str, Any] | None) -> None:
    """Show ``message`` as Slack shows an ack's: ephemeral unless it says otherwise. One
    that cannot be delivered is logged, like any private reply (bot/context.py)."""
    if respond is None or not message:
        return
    message = {"response_type": "ephemeral", **message, "replace_original": False}
    try:
        await respond(**message)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("could not show an ack's message: %s", type(exc).__name__)
