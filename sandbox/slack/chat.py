"""The ``chat.*`` methods of the emulator's Web API: post, update, post ephemeral, delete,
permalink."""

from __future__ import annotations

from starlette.requests import Request

from sandbox.slack.params import (
    ApiError,
    Params,
    content,
    find_channel,
    find_message,
    find_user,
    metadata,
    thread_root,
)
from sandbox.slack.responses import as_bool
from sandbox.slack.state import SlackState


async def post_message(state: SlackState, params: Params, request: Request) -> Params:
    channel = find_channel(state, params)
    text, blocks, attachments = content(params)
    meta = metadata(params)
    message = state.post(
        channel.id,
        text=text,
        blocks=blocks,
        attachments=attachments,
        thread_ts=thread_root(state, channel, params.get("thread_ts")),
        reply_broadcast=as_bool(params.get("reply_broadcast")),
        metadata=meta,
    )
    team = state.team.id
    payload = message.payload(team, with_metadata=True)
    return {"channel": channel.id, "ts": message.ts, "message": payload}


async def update(state: SlackState, params: Params, request: Request) -> Params:
    channel = find_channel(state, params)
    message = find_message(state, channel, params.get("ts"))
    if message.ephemeral_to is not None or message.user != state.bot.user_id:
        raise ApiError("cant_update_message")
    if "text" not in params and "blocks" not in params and "attachments" not in params:
        raise ApiError("no_text")
    merged = {
        "text": params.get("text", "" if "blocks" in params else message.text),
        "blocks": params.get("blocks", message.blocks),
        "attachments": params.get("attachments", message.versions[-1].attachments),
    }
    text, blocks, attachments = content(merged)
    meta = metadata(params)
    state.edit(message, text=text, blocks=blocks, attachments=attachments, metadata=meta)
    team = state.team.id
    return {
        "channel": channel.id,
        "ts": message.ts,
        "text": text,
        "message": message.payload(team, with_metadata=True),
    }


async def post_ephemeral(state: SlackState, params: Params, request: Request) -> Params:
    channel = find_channel(state, params)
    user = find_user(state, params)
    text, blocks, attachments = content(params)
    message = state.post(
        channel.id,
        text=text,
        blocks=blocks,
        attachments=attachments,
        thread_ts=thread_root(state, channel, params.get("thread_ts")),
        ephemeral_to=user.id,
    )
    return {"message_ts": message.ts}


async def delete(state: SlackState, params: Params, request: Request) -> Params:
    channel = find_channel(state, params)
    message = find_message(state, channel, params.get("ts"))
    if message.ephemeral_to is not None or message.user != state.bot.user_id:
        raise ApiError("cant_delete_message")
    state.delete(message)
    return {"channel": channel.id, "ts": message.ts}


async def permalink(state: SlackState, params: Params, request: Request) -> Params:
    channel = find_channel(state, params)
    message = find_message(state, channel, params.get("message_ts"))
    link = f"https://{state.team.domain}.slack.com/archives/{channel.id}/p"
    link += message.ts.replace(".", "")
    if message.thread_ts:
        link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
    return {"channel": channel.id, "permalink": link}
