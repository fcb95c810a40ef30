"""The Slack Web API methods the bot calls, served by Starlette on ``/api/<method>``, plus
the file upload URLs and the ``response_url`` endpoints the emulator hands out. The methods
themselves are in ``chat``, ``conversations``, ``files`` and ``users``; this is the dispatch:
tokens, rate limits, the call log.

Like Slack, every method answers HTTP 200 with ``{"ok": false, "error": ...}`` on errors,
except rate limiting (HTTP 429 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from sandbox.kill import KillAfter, KillSwitch
from sandbox.slack import chat, conversations, files, users
from sandbox.slack.params import ApiError, Method, Params, bearer, read_params
from sandbox.slack.responses import ResponseError, check_use, deliver
from sandbox.slack.socket import SocketHub
from sandbox.slack.state import SlackState

SCOPES = "commands,chat:write,chat:write.public,files:write,users:read,usergroups:read"


@dataclass
class RateLimit:
    """Slack's per-channel message limit: about one a second, with a short burst."""

    per_second: float = 1.0
    burst: int = 3
    methods: frozenset[str] = frozenset({"chat.postMessage", "chat.update"})


@dataclass
class _Bucket:
    tokens: float
    at: float = field(default_factory=time.monotonic)


class SlackApi:
    """The Web API side of the emulator. ``app`` is the Starlette application."""

    def __init__(
        self,
        state: SlackState,
        *,
        token: str,
        rate_limit: RateLimit | None = None,
        latency: float = 0.0,
        app_token: str = "xapp-sandbox-app-token",
    ) -> None:
        self.state = state
        self.token = token
        self.rate_limit = rate_limit
        """None: no rate limiting (the default). Set it at any time to turn it on."""
        self.latency = latency
        """Seconds added to every Web API call."""
        self._buckets: dict[str, _Bucket] = {}
        self.app_token = app_token
        """The app-level token (`xapp-`) Socket Mode connections open with."""
        self.sockets = SocketHub()
        self._methods: dict[str, Method] = {
            "auth.test": users.auth_test,
            "apps.connections.open": self._connections_open,
            "chat.postMessage": chat.post_message,
            "chat.update": chat.update,
            "chat.postEphemeral": chat.post_ephemeral,
            "chat.delete": chat.delete,
            "chat.getPermalink": chat.permalink,
            "files.getUploadURLExternal": files.upload_url,
            "files.completeUploadExternal": files.complete_upload,
            "users.info": users.user_info,
            "conversations.info": conversations.info,
            "conversations.history": conversations.history,
            "conversations.replies": conversations.replies,
            "usergroups.list": users.usergroups,
            "usergroups.users.list": users.usergroup_users,
        }
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                Route("/upload/{file_id}", self._upload, methods=["POST"]),
                Route("/response/{token}", self._response, methods=["POST"]),
                WebSocketRoute("/socket-mode", self.sockets.endpoint),
            ]
        )
        self.kill_switch = KillSwitch()
        """The fault hook: kill a bot process right after a chosen answer (sandbox.kill)."""
        self.app.add_middleware(KillAfter, switch=self.kill_switch)

    # -- HTTP endpoints -------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        self.state.in_flight += 1
        try:
            params = await read_params(request)
            token = bearer(request) or str(params.pop("token", "") or "")
            params.pop("token", None)
            if self.latency:
                await asyncio.sleep(self.latency)
            try:
                if not token:
                    raise ApiError("not_authed")
                if method == "apps.connections.open":
                    if token != self.app_token:
                        raise ApiError("invalid_auth")
                elif token != self.token:
                    raise ApiError("invalid_auth")
                handler = self._methods.get(method)
                if handler is None:
                    raise ApiError("unknown_method")
                retry_after = self._take(method, params)
                if retry_after is not None:
                    self.state.record_call(method, params, "ratelimited")
                    return JSONResponse(
                        {"ok": False, "error": "ratelimited"},
                        status_code=429,
                        headers={"Retry-After": str(retry_after)},
                    )
                result = await handler(self.state, params, request)
            except ApiError as exc:
                self.state.record_call(method, params, exc.error)
                return JSONResponse({"ok": False, "error": exc.error, **exc.extra})
            self.state.record_call(method, params, None)
            return JSONResponse({"ok": True, **result}, headers={"x-oauth-scopes": SCOPES})
        finally:
            self.state.in_flight -= 1

    async def _upload(self, request: Request) -> Response:
        upload = self.state.files.get(request.path_params["file_id"])
        body = await request.body()
        self.state.record_call("upload", {"file_id": request.path_params["file_id"]}, None)
        if upload is None:
            return PlainTextResponse("file_not_found", status_code=404)
        upload.content = body
        return PlainTextResponse(f"OK - {len(body)}")

    async def _response(self, request: Request) -> Response:
        token = request.path_params["token"]
        target = self.state.response_urls.get(token)
        try:
            body = json.loads(await request.body() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        params: Params = body if isinstance(body, dict) else {}
        try:
            if target is None:
                raise ResponseError(404, "invalid_url")
            check_use(self.state, target)
            if not isinstance(body, dict):
                raise ResponseError(400, "invalid_payload")
            target.uses += 1
            deliver(self.state, target, body)
        except ResponseError as exc:
            self.state.record_call("response_url", {"token": token, **params}, exc.error)
            return PlainTextResponse(exc.error, status_code=exc.status)
        self.state.record_call("response_url", {"token": token, **params}, None)
        return PlainTextResponse("ok")

    def _take(self, method: str, params: Params) -> int | None:
        """Spend one token of the channel's bucket; the seconds to wait when empty."""
        limit = self.rate_limit
        if limit is None or method not in limit.methods:
            return None
        key = str(params.get("channel", ""))
        now = time.monotonic()
        bucket = self._buckets.setdefault(key, _Bucket(float(limit.burst), now))
        bucket.tokens = min(limit.burst, bucket.tokens + (now - bucket.at) * limit.per_second)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / limit.per_second))

    async def _connections_open(
        self, state: SlackState, params: Params, request: Request
    ) -> Params:
        base = str(request.base_url).rstrip("/").replace("http", "ws", 1)
        return {"url": f"{base}/socket-mode?ticket={self.sockets.new_ticket()}"}
