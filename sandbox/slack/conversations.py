"""The ``conversations.*`` methods of the emulator's Web API: a channel's info, its history
and a thread's replies."""

from __future__ import annotations

from starlette.requests import Request

from sandbox.slack.params import Params, find_channel, find_message
from sandbox.slack.responses import as_bool
from sandbox.slack.state import SlackState


async def info(state: SlackState, params: Params, request: Request) -> Params:
    channel = find_channel(state, params)
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


async def history(state: SlackState, params: Params, request: Request) -> Params:
    """Newest first; ``oldest`` (exclusive) and ``include_all_metadata`` as Slack has them."""
    channel = find_channel(state, params)
    team = state.team.id
    meta = as_bool(params.get("include_all_metadata"))
    oldest = float(params.get("oldest") or 0)
    messages = [
        m.payload(team, with_metadata=meta)
        for m in reversed(state.history(channel.id))
        if float(m.ts) > oldest
    ]
    return {"messages": messages, "has_more": False}


async def replies(state: SlackState, params: Params, request: Request) -> Params:
    """The thread's root, then its replies, oldest first."""
    channel = find_channel(state, params)
    root = find_message(state, channel, params.get("ts"))
    root = state.messages.get(root.thread_ts or root.ts, root)
    team = state.team.id
    meta = as_bool(params.get("include_all_metadata"))
    thread = [root, *state.replies(channel.id, root.ts)]
    return {
        "messages": [m.payload(team, with_metadata=meta) for m in thread],
        "has_more": False,
    }
