"""The Slack Web API methods the bot calls, served by Starlette on ``/api/<method>``, plus
the file upload URLs and the ``response_url`` endpoints the emulator hands out.

Like Slack, every method answers HTTP 200 with ``{"ok": false, "error": ...}`` on errors,
except rate limiting (HTTP 429 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from sandbox.slack.blocks import normalize_blocks
from sandbox.slack.limits import MAX_TEXT, check_blocks
from sandbox.slack.responses import ResponseError, as_bool, as_list, check_use, deliver
from sandbox.slack.socket import SocketHub
from sandbox.slack.state import Channel, Message, SlackState, UploadedFile, User

Params = dict[str, Any]
Handler = Callable[[Params, Request], Awaitable[Params]]
SCOPES = "commands,chat:write,chat:write.public,files:write,users:read,usergroups:read"


class ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


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
        self._methods: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._connections_open,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.delete": self._delete,
            "chat.getPermalink": self._permalink,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "users.info": self._user_info,
            "conversations.info": self._conversation_info,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "usergroups.list": self._usergroups,
            "usergroups.users.list": self._usergroup_users,
        }
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                Route("/upload/{file_id}", self._upload, methods=["POST"]),
                Route("/response/{token}", self._response, methods=["POST"]),
                WebSocketRoute("/socket-mode", self.sockets.endpoint),
            ]
        )

    # -- HTTP endpoints -------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        self.state.in_flight += 1
        try:
            params = await _read_params(request)
            token = _bearer(request) or str(params.pop("token", "") or "")
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
                result = await handler(params, request)
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

    # -- look-ups -------------------------------------------------------------------------

    def _channel(self, params: Params, name: str = "channel") -> Channel:
        value = params.get(name)
        if not value:
            raise ApiError("channel_not_found")
        channel = self.state.channel(str(value))
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    def _user(self, params: Params) -> User:
        user = self.state.user(str(params.get("user", "")))
        if user is None:
            raise ApiError("user_not_found")
        return user

    def _message(self, channel: Channel, ts: Any) -> Message:
        message = self.state.messages.get(str(ts or ""))
        if message is None or message.deleted or message.channel != channel.id:
            raise ApiError("message_not_found")
        return message

    def _content(self, params: Params) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        text = str(params.get("text") or "")
        blocks = as_list(params.get("blocks")) or []
        attachments = as_list(params.get("attachments")) or []
        errors = check_blocks(blocks)
        if errors:
            raise ApiError("invalid_blocks", errors=errors)
        if not isinstance(attachments, list):
            raise ApiError("invalid_attachments")
        if len(text) > MAX_TEXT:
            raise ApiError("msg_too_long")
        if not text and not blocks and not attachments:
            raise ApiError("no_text")
        return text, normalize_blocks(blocks), attachments

    def _thread_root(self, channel: Channel, thread_ts: Any) -> str | None:
        if not thread_ts:
            return None
        root = self.state.messages.get(str(thread_ts))
        if root is None or root.channel != channel.id or root.ephemeral_to is not None:
            raise ApiError("thread_not_found")
        return root.thread_ts or root.ts

    # -- methods --------------------------------------------------------------------------

    async def _connections_open(self, params: Params, request: Request) -> Params:
        base = str(request.base_url).rstrip("/").replace("http", "ws", 1)
        return {"url": f"{base}/socket-mode?ticket={self.sockets.new_ticket()}"}

    async def _auth_test(self, params: Params, request: Request) -> Params:
        team, bot = self.state.team, self.state.bot
        return {
            "url": f"https://{team.domain}.slack.com/",
            "team": team.name,
            "user": bot.name,
            "team_id": team.id,
            "user_id": bot.user_id,
            "bot_id": bot.bot_id,
            "is_enterprise_install": False,
        }

    async def _post_message(self, params: Params, request: Request) -> Params:
        channel = self._channel(params)
        text, blocks, attachments = self._content(params)
        message = self.state.post(
            channel.id,
            text=text,
            blocks=blocks,
            attachments=attachments,
            thread_ts=self._thread_root(channel, params.get("thread_ts")),
            reply_broadcast=as_bool(params.get("reply_broadcast")),
        )
        team = self.state.team.id
        return {"channel": channel.id, "ts": message.ts, "message": message.payload(team)}

    async def _update(self, params: Params, request: Request) -> Params:
        channel = self._channel(params)
        message = self._message(channel, params.get("ts"))
        if message.ephemeral_to is not None or message.user != self.state.bot.user_id:
            raise ApiError("cant_update_message")
        if "text" not in params and "blocks" not in params and "attachments" not in params:
            raise ApiError("no_text")
        merged = {
            "text": params.get("text", "" if "blocks" in params else message.text),
            "blocks": params.get("blocks", message.blocks),
            "attachments": params.get("attachments", message.versions[-1].attachments),
        }
        text, blocks, attachments = self._content(merged)
        self.state.edit(message, text=text, blocks=blocks, attachments=attachments)
        team = self.state.team.id
        return {
            "channel": channel.id,
            "ts": message.ts,
            "text": text,
            "message": message.payload(team),
        }

    async def _post_ephemeral(self, params: Params, request: Request) -> Params:
        channel = self._channel(params)
        user = self._user(params)
        text, blocks, attachments = self._content(params)
        message = self.state.post(
            channel.id,
            text=text,
            blocks=blocks,
            attachments=attachments,
            thread_ts=self._thread_root(channel, params.get("thread_ts")),
            ephemeral_to=user.id,
        )
        return {"message_ts": message.ts}

    async def _delete(self, params: Params, request: Request) -> Params:
        channel = self._channel(params)
        message = self._message(channel, params.get("ts"))
        if message.ephemeral_to is not None or message.user != self.state.bot.user_id:
            raise ApiError("cant_delete_message")
        self.state.delete(message)
        return {"channel": channel.id, "ts": message.ts}

    async def _permalink(self, params: Params, request: Request) -> Params:
        channel = self._channel(params)
        message = self._message(channel, params.get("message_ts"))
        link = f"https://{self.state.team.domain}.slack.com/archives/{channel.id}/p"
        link += message.ts.replace(".", "")
        if message.thread_ts:
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    async def _upload_url(self, params: Params, request: Request) -> Params:
        filename = str(params.get("filename") or "")
        length = str(params.get("length") or "")
        if not filename or not length.isdigit():
            raise ApiError("invalid_arguments")
        file_id = f"F{len(self.state.files) + 1:09d}"
        self.state.files[file_id] = UploadedFile(
            file_id, filename, int(length), title=filename, created=self.state.clock()
        )
        upload_url = f"{str(request.base_url).rstrip('/')}/upload/{file_id}"
        return {"upload_url": upload_url, "file_id": file_id}

    async def _complete_upload(self, params: Params, request: Request) -> Params:
        items = as_list(params.get("files"))
        if not isinstance(items, list) or not items:
            raise ApiError("invalid_arguments")
        uploads: list[UploadedFile] = []
        for item in items:
            upload = self.state.files.get(str(item.get("id", "")))
            if upload is None or upload.content is None:
                raise ApiError("file_not_found")
            upload.title = str(item.get("title") or upload.name)
            uploads.append(upload)
        channel_id = params.get("channel_id") or str(params.get("channels") or "").split(",")[0]
        if channel_id:
            channel = self._channel({"channel": channel_id})
            thread_ts = self._thread_root(channel, params.get("thread_ts"))
            for upload in uploads:
                upload.channel, upload.thread_ts = channel.id, thread_ts
            self.state.post(
                channel.id,
                text=str(params.get("initial_comment") or ""),
                thread_ts=thread_ts,
                files=uploads,
            )
        return {"files": [self._file_info(u) for u in uploads]}

    def _file_info(self, upload: UploadedFile) -> Params:
        return {
            "id": upload.id,
            "name": upload.name,
            "title": upload.title,
            "size": upload.size,
            "created": int(upload.created),
            "user": self.state.bot.user_id,
            "mimetype": "text/csv" if upload.name.endswith(".csv") else "text/plain",
            "permalink": f"https://{self.state.team.domain}.slack.com/files/{upload.id}",
            "channels": [upload.channel] if upload.channel else [],
        }

    async def _user_info(self, params: Params, request: Request) -> Params:
        user = self._user(params)
        return {
            "user": {
                "id": user.id,
                "team_id": self.state.team.id,
                "name": user.name,
                "real_name": user.real_name,
                "is_bot": user.is_bot,
                "deleted": False,
                "tz": user.tz,
                "profile": {"real_name": user.real_name, "display_name": user.name},
            }
        }

    async def _conversation_info(self, params: Params, request: Request) -> Params:
        channel = self._channel(params)
        return {
            "channel": {
                "id": channel.id,
                "name": channel.name,
                "is_channel": not channel.is_private,
                "is_private": channel.is_private,
                "is_member": True,
                "is_archived": False,
            }
        }

    async def _history(self, params: Params, request: Request) -> Params:
        channel = self._channel(params)
        team = self.state.team.id
        messages = [m.payload(team) for m in reversed(self.state.history(channel.id))]
        return {"messages": messages, "has_more": False}

    async def _replies(self, params: Params, request: Request) -> Params:
        channel = self._channel(params)
        root = self._message(channel, params.get("ts"))
        root = self.state.messages.get(root.thread_ts or root.ts, root)
        team = self.state.team.id
        thread = [root, *self.state.replies(channel.id, root.ts)]
        return {"messages": [m.payload(team) for m in thread], "has_more": False}

    async def _usergroups(self, params: Params, request: Request) -> Params:
        groups = self.state.usergroups.values()
        with_users = as_bool(params.get("include_users"))
        return {
            "usergroups": [
                {"id": g.id, "handle": g.handle, "name": g.name}
                | ({"users": list(g.users)} if with_users else {})
                for g in groups
            ]
        }

    async def _usergroup_users(self, params: Params, request: Request) -> Params:
        group = self.state.usergroups.get(str(params.get("usergroup", "")))
        if group is None:
            raise ApiError("no_such_subteam")
        return {"users": list(group.users)}


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


async def _read_params(request: Request) -> Params:
    """Query string, then a form or JSON body: slack_sdk sends all three depending on the
    method."""
    params: Params = dict(request.query_params)
    body = await request.body()
    if not body:
        return params
    if "json" in request.headers.get("content-type", ""):
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            params.update(data)
        return params
    params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params
