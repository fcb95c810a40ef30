"""Button clicks are checked before any listener sees them. A click whose payload has the
wrong shape, or whose action the bot does not know, is acknowledged and answered privately
("not valid any more", after the ack); it reaches no listener and changes nothing.
Listeners can then trust the shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncBoltRequest
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.response import BoltResponse

from bot.bootstrap import Container
from bot.context import REPLY
from commands.actions import ActionId
from commands.blocks import error_message

log = logging.getLogger(__name__)

NOT_VALID = "That button is not valid any more."
KNOWN_ACTIONS = frozenset(action.value for action in ActionId)


def _str_or_none(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _dict_or_none(value: Any) -> bool:
    return value is None or isinstance(value, dict)


def action_problem(body: dict[str, Any]) -> str | None:
    """What is wrong with a ``block_actions`` payload's shape, or None when nothing is."""
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions:
        return "no actions"
    for action in actions:
        if not isinstance(action, dict) or not isinstance(action.get("action_id"), str):
            return "an action without an action_id"
        if action["action_id"] not in KNOWN_ACTIONS:
            return "an action the bot does not know"
        if not _str_or_none(action.get("value")):
            return "a value that is not text"
    user = body.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        return "no user"
    for name in ("channel", "container", "message", "state", "team"):
        if not _dict_or_none(body.get(name)):
            return f"{name} is not an object"
    channel, container = body.get("channel") or {}, body.get("container") or {}
    if not _str_or_none(channel.get("id")) or not _str_or_none(container.get("channel_id")):
        return "a channel id that is not text"
    message = body.get("message") or {}
    if not all(_str_or_none(message.get(k)) for k in ("ts", "thread_ts", "text")):
        return "a message whose ts or text is not text"
    if not isinstance(message.get("blocks", []), list):
        return "message blocks that are not a list"
    if not _dict_or_none((body.get("state") or {}).get("values")):
        return "state values that are not an object"
    if not isinstance(body.get("response_url"), str):
        return "no response_url"  # the bot's buttons are all in messages, which have one
    return None


async def tell_not_valid(context: AsyncBoltContext) -> None:
    if isinstance(context.get("response_url"), str) and context.respond is not None:
        try:
            await context.respond(
                response_type="ephemeral",
                replace_original=False,
                **error_message(NOT_VALID).as_kwargs(),
            )
        except Exception:
            log.warning("could not tell the person the button was not valid", exc_info=True)


class CheckActions(AsyncMiddleware):
    """Global middleware: malformed clicks stop here (acknowledged, answered privately)."""

    def __init__(self, container: Container) -> None:
        self.container = container

    @property
    def name(self) -> str:
        return "CheckActions"

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        body = req.body
        if isinstance(body, dict) and body.get("type") == "block_actions":
            problem = action_problem(body)
            if problem is not None:
                log.info("malformed click refused: %s", problem)
                self.container.metrics.slack_requests.labels("malformed").inc()
                self.container.tasks.spawn(tell_not_valid(req.context), name=REPLY)
                return BoltResponse(status=200, body="")
        return await next()
