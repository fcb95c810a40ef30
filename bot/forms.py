"""A slash command whose form merely contains the word "payload" (`/invoice check payload`):
bolt's ``parse_body`` takes any form body containing it for a click's ``payload=...`` field,
finds none, and leaves the request empty, so no listener matches (404). This middleware,
through bolt's own middleware API and after bolt's signature check, reads such a body as
the plain form it is, so the command gets its normal answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from slack_bolt.async_app import AsyncBoltRequest
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.response import BoltResponse


def form_fields(raw_body: str) -> dict[str, str] | None:
    """The fields of a form bolt read as empty because it contains "payload" but has no
    ``payload`` field; None for any other body (bolt read it right)."""
    if "payload" not in raw_body or raw_body.lstrip().startswith("{"):
        return None
    fields = dict(parse_qsl(raw_body, keep_blank_values=True))
    return None if "payload" in fields or not fields else fields


class FormBodies(AsyncMiddleware):
    @property
    def name(self) -> str:
        return "FormBodies"

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        if not req.body and req.mode == "http":
            fields = form_fields(req.raw_body)
            if fields is not None:
                req.body = dict(fields)
                for key in ("team_id", "user_id", "channel_id", "response_url"):
                    if fields.get(key):  # what bolt takes from a slash command's form
                        req.context[key] = fields[key]
        return await next()
