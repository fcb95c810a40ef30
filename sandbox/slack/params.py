"""What every Web API method of the emulator shares: its parameters, ``ApiError`` (Slack's
``{"ok": false, "error": ...}``) and the look-ups that raise Slack's errors."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from sandbox.slack.blocks import normalize_blocks
from sandbox.slack.limits import MAX_TEXT, check_blocks
from sandbox.slack.responses import as_list
from sandbox.slack.state import Channel, Message, SlackState, User

Params = dict[str, Any]
Method = Callable[[SlackState, Params, Request], Awaitable[Params]]
"""A Web API method: the state, the call's parameters and request; the answer's fields."""


class ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


async def read_params(request: Request) -> Params:
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


def find_channel(state: SlackState, params: Params, name: str = "channel") -> Channel:
    value = params.get(name)
    if not value:
        raise ApiError("channel_not_found")
    channel = state.channel(str(value))
    if channel is None:
        raise ApiError("channel_not_found")
    return channel


def find_user(state: SlackState, params: Params) -> User:
    user = state.user(str(params.get("user", "")))
    if user is None:
        raise ApiError("user_not_found")
    return user


def find_message(state: SlackState, channel: Channel, ts: Any) -> Message:
    message = state.messages.get(str(ts or ""))
    if message is None or message.deleted or message.channel != channel.id:
        raise ApiError("message_not_found")
    return message


def content(params: Params) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
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


def metadata(params: Params) -> dict[str, Any] | None:
    """Message metadata: ``{"event_type": str, "event_payload": {...}}``, as an object
    (JSON bodies) or a JSON string (form bodies)."""
    value = params.get("metadata")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ApiError("invalid_metadata_format") from None
    if not isinstance(value, dict):
        raise ApiError("invalid_metadata_format")
    event_type, payload = value.get("event_type"), value.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        raise ApiError("invalid_metadata_schema")
    return {"event_type": event_type, "event_payload": payload}


def thread_root(state: SlackState, channel: Channel, thread_ts: Any) -> str | None:
    if not thread_ts:
        return None
    root = state.messages.get(str(thread_ts))
    if root is None or root.channel != channel.id or root.ephemeral_to is not None:
        raise ApiError("thread_not_found")
    return root.thread_ts or root.ts
