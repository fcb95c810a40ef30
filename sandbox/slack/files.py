"""The ``files.*`` methods of the emulator's Web API: Slack's two-step external upload
(get an upload URL, POST the bytes there, then complete the upload into a channel)."""

from __future__ import annotations

from starlette.requests import Request

from sandbox.slack.params import ApiError, Params, find_channel, thread_root
from sandbox.slack.responses import as_list
from sandbox.slack.state import SlackState, UploadedFile


async def upload_url(state: SlackState, params: Params, request: Request) -> Params:
    filename = str(params.get("filename") or "")
    length = str(params.get("length") or "")
    if not filename or not length.isdigit():
        raise ApiError("invalid_arguments")
    file_id = f"F{len(state.files) + 1:09d}"
    state.files[file_id] = UploadedFile(
        file_id, filename, int(length), title=filename, created=state.clock()
    )
    url = f"{str(request.base_url).rstrip('/')}/upload/{file_id}"
    return {"upload_url": url, "file_id": file_id}


async def complete_upload(state: SlackState, params: Params, request: Request) -> Params:
    items = as_list(params.get("files"))
    if not isinstance(items, list) or not items:
        raise ApiError("invalid_arguments")
    uploads: list[UploadedFile] = []
    for item in items:
        upload = state.files.get(str(item.get("id", "")))
        if upload is None or upload.content is None:
            raise ApiError("file_not_found")
        upload.title = str(item.get("title") or upload.name)
        uploads.append(upload)
    channel_id = params.get("channel_id") or str(params.get("channels") or "").split(",")[0]
    if channel_id:
        channel = find_channel(state, {"channel": channel_id})
        thread_ts = thread_root(state, channel, params.get("thread_ts"))
        for upload in uploads:
            upload.channel, upload.thread_ts = channel.id, thread_ts
        state.post(
            channel.id,
            text=str(params.get("initial_comment") or ""),
            thread_ts=thread_ts,
            files=uploads,
        )
    return {"files": [file_info(state, u) for u in uploads]}


def file_info(state: SlackState, upload: UploadedFile) -> Params:
    return {
        "id": upload.id,
        "name": upload.name,
        "title": upload.title,
        "size": upload.size,
        "created": int(upload.created),
        "user": state.bot.user_id,
        "mimetype": "text/csv" if upload.name.endswith(".csv") else "text/plain",
        "permalink": f"https://{state.team.domain}.slack.com/files/{upload.id}",
        "channels": [upload.channel] if upload.channel else [],
    }
