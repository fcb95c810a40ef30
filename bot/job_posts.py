"""A job's Slack messages, each posted exactly once whatever the moment of a crash.

Each message a job posts has a role (root, progress, acknowledged, processed, outcome). Its
row in the outbox (services.storage.outbox) is written before the post and gets the
message's ``ts`` after it; the post carries Slack message metadata naming the job and the
role. A row without ``ts`` (the process died between the post and the record) is resolved
through Slack: the thread's replies (``conversations.replies``), or the channel's history
for the root, read with ``include_all_metadata``; the message found is recorded and
updated instead of posted again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.pacer import ChannelPacer
from commands.blocks import Message
from services.jobs import Job
from services.storage.outbox import JobMessage, JobMessages

log = logging.getLogger(__name__)

EVENT_TYPE = "invoicebot_job_message"
PAGE = 200
HISTORY_BACK = timedelta(minutes=10)
"""How far before the job's creation the channel's history is read for its root."""


def metadata(job: Job, role: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"job_id": job.id, "role": role}}


def is_ours(message: dict[str, Any], job: Job, role: str) -> bool:
    meta = message.get("metadata")
    if not isinstance(meta, dict) or meta.get("event_type") != EVENT_TYPE:
        return False
    payload = meta.get("event_payload")
    return isinstance(payload, dict) and payload == {"job_id": job.id, "role": role}


def shares(message: dict[str, Any], filename: str) -> bool:
    files = message.get("files")
    return isinstance(files, list) and any(
        isinstance(f, dict) and f.get("name") == filename for f in files
    )


@dataclass
class JobPoster:
    slack: AsyncWebClient
    outbox: JobMessages
    pacer: ChannelPacer
    worker: str

    async def post_once(
        self,
        job: Job,
        role: str,
        message: Message,
        *,
        in_thread: bool = True,
        refresh: bool = True,
    ) -> str:
        """The ts of the job's ``role`` message: posted now, or (posted before) updated to
        ``message`` unless ``refresh`` is False. ``in_thread`` False: a top-level message
        (the root)."""
        kwargs = message.as_kwargs() | {"metadata": metadata(job, role)}
        known = await self.outbox.get(job_id=job.id, role=role)
        if known is None:  # never tried: say so before trying
            await self.outbox.intend(job_id=job.id, role=role, worker=self.worker)
            ts = None
        elif (ts := known.ts) is None:  # tried, and maybe posted before a crash
            ts = await self.find(job, role, in_thread=in_thread)
            if ts is not None:
                log.info("job %s: its %s message was posted before a restart", job.id, role)
                await self.outbox.record(job_id=job.id, role=role, ts=ts)
        if ts is not None:
            if refresh:
                await self.pacer.wait(job.channel)
                await self.slack.chat_update(channel=job.channel, ts=ts, **kwargs)
            return ts
        await self.pacer.wait(job.channel)
        response = await self.slack.chat_postMessage(
            channel=job.channel, thread_ts=job.thread_ts if in_thread else None, **kwargs
        )
        ts = str(response["ts"])
        await self.outbox.record(job_id=job.id, role=role, ts=ts)
        return ts

    async def upload_once(
        self, job: Job, role: str, *, filename: str, content: str, title: str
    ) -> None:
        """A file shared in the job's thread once (files carry no metadata: found again by
        the file's name, which names the job or the run)."""
        known = await self.outbox.get(job_id=job.id, role=role)
        if known is None:
            known = await self.outbox.intend(job_id=job.id, role=role, worker=self.worker)
        elif known.ts is None and await self.find(job, role, filename=filename):
            known = JobMessage(job.id, role, "shared")
        if known.ts is not None:
            return
        response = await self.slack.files_upload_v2(
            channel=job.channel,
            thread_ts=job.thread_ts,
            content=content,
            filename=filename,
            title=title,
        )
        files = response.get("files") or [{}]
        await self.outbox.record(job_id=job.id, role=role, ts=str(files[0].get("id") or "shared"))

    async def find(
        self, job: Job, role: str, *, in_thread: bool = True, filename: str | None = None
    ) -> str | None:
        """The ts of a message of the job's with that role (or sharing ``filename``), if
        Slack has one."""
        cursor: str | None = None
        while True:
            page: dict[str, Any] = {"channel": job.channel, "limit": PAGE, "cursor": cursor}
            if in_thread:
                response = await self.slack.conversations_replies(
                    ts=job.thread_ts, include_all_metadata=True, **page
                )
            else:
                oldest = (job.created_at - HISTORY_BACK).timestamp()
                response = await self.slack.conversations_history(
                    oldest=f"{oldest:.6f}", include_all_metadata=True, **page
                )
            for found in response.get("messages") or []:
                if not isinstance(found, dict):
                    continue
                if is_ours(found, job, role) if filename is None else shares(found, filename):
                    return str(found["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not response.get("has_more") or cursor is None:
                return None
