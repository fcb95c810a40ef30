"""Messages sent through a ``response_url`` (or in the body of a slash command's ack)."""

from __future__ import annotations

import json
from typing import Any

from sandbox.slack.blocks import normalize_blocks
from sandbox.slack.limits import check_blocks
from sandbox.slack.state import Message, ResponseUrl, SlackState

MAX_USES = 5
LIFETIME = 30 * 60.0


class ResponseError(Exception):
    """What Slack answers a bad response_url request with (HTTP status, text body)."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def as_list(value: Any) -> Any:
    """``blocks``/``attachments``/``files`` may arrive as a JSON string inside a form."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def check_use(state: SlackState, target: ResponseUrl) -> None:
    """Refuse a response_url used 5 times already or older than 30 minutes, like Slack."""
    if state.clock() - target.created > LIFETIME:
        raise ResponseError(404, "expired_url")
    if target.uses >= MAX_USES:
        raise ResponseError(404, "used_url")


def original(state: SlackState, target: ResponseUrl) -> Message | None:
    """The message ``replace_original``/``delete_original`` act on: the one the button was
    in, or for a slash command the last message sent through the same URL."""
    ts = target.source_ts if target.kind == "action" else target.last_ts
    message = state.messages.get(ts) if ts else None
    return message if message is not None and not message.deleted else None


def deliver(state: SlackState, target: ResponseUrl, body: dict[str, Any]) -> Message | None:
    """Post, replace or delete as ``body`` asks. Without ``replace_original`` a new message
    is posted: ephemeral (only the user who acted sees it) unless ``response_type`` is
    ``in_channel``."""
    text = str(body.get("text") or "")
    blocks = as_list(body.get("blocks")) or []
    attachments = as_list(body.get("attachments")) or []
    errors = check_blocks(blocks)
    if errors:
        raise ResponseError(400, "invalid_blocks")
    blocks = normalize_blocks(blocks)
    source = original(state, target)
    if as_bool(body.get("delete_original")):
        if source is not None:
            state.delete(source)
        if not text and not blocks:
            return None
    elif as_bool(body.get("replace_original")) and source is not None:
        if not text and not blocks:
            raise ResponseError(400, "no_text")
        state.edit(source, text=text, blocks=blocks, attachments=attachments)
        return source
    if not text and not blocks and not attachments:
        raise ResponseError(400, "no_text")
    thread_ts = body.get("thread_ts")
    thread_ts = str(thread_ts) if thread_ts else None
    if thread_ts and thread_ts in state.messages:
        thread_ts = state.messages[thread_ts].thread_ts or thread_ts
    in_channel = body.get("response_type") == "in_channel"
    message = state.post(
        target.channel,
        text=text,
        blocks=blocks,
        attachments=attachments,
        thread_ts=thread_ts,
        ephemeral_to=None if in_channel else target.user,
    )
    target.last_ts = message.ts
    return message
