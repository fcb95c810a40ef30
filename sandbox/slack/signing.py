"""What the emulator sends the bot, as Slack sends it: signed requests (``Signing`` says
how, or how wrongly), the same body framed for Socket Mode, and the bot's ``BotReply``."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class Signing:
    """How to sign a request; the defaults sign it the way Slack does."""

    stale: bool = False
    """Send a timestamp ten minutes old (bolt refuses anything over five)."""
    wrong_signature: bool = False
    """Sign with the wrong secret."""
    retry_num: int | None = None
    """Send ``X-Slack-Retry-Num`` (and ``X-Slack-Retry-Reason``) like a redelivery."""
    retry_reason: str = "http_timeout"


@dataclass(frozen=True)
class BotReply:
    """The bot's HTTP answer to a request the emulator sent."""

    status: int
    """HTTP status; 0 when no answer came."""
    body: str
    error: str | None = None
    """What Slack would tell the user when the app failed: ``operation_timeout`` (no answer
    within the ack timeout), ``dispatch_failed`` (no connection or a non-2xx answer)."""

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body.strip() else None
        except json.JSONDecodeError:
            return None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, body: bytes, *, signing: Signing, content_type: str
) -> dict[str, str]:
    """The headers Slack sends with ``body``, signed with ``secret`` as ``signing`` says."""
    timestamp = str(int(time.time()) - (600 if signing.stale else 0))
    secret = secret + ("-wrong" if signing.wrong_signature else "")
    headers = {
        "Content-Type": content_type,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign(secret, timestamp, body),
    }
    if signing.retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(signing.retry_num)
        headers["X-Slack-Retry-Reason"] = signing.retry_reason
    return headers


def socket_envelope(body: bytes) -> tuple[str, dict[str, Any]]:
    """The Socket Mode envelope type and payload of a form body sent over HTTP."""
    form = dict(parse_qsl(body.decode()))
    if "payload" in form:
        payload: dict[str, Any] = json.loads(form["payload"])
        return "interactive", payload
    return "slash_commands", dict(form)
