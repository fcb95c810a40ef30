"""Message metadata in the Slack emulator, as Slack documents it: set by chat.postMessage
and chat.update, returned by conversations.replies/history with include_all_metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack.emulator import SlackEmulator
from sandbox.slack.state import FINANCE

META = {"event_type": "invoicebot_job_message", "event_payload": {"job_id": "j1", "role": "x"}}


@pytest.fixture
async def client() -> AsyncIterator[AsyncWebClient]:
    async with SlackEmulator(signing_secret="s") as emu:
        yield AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)


def metadata_of(messages: list[dict[str, Any]]) -> list[Any]:
    return [m.get("metadata") for m in messages]


async def test_metadata_is_kept_and_shown_only_when_asked(client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel=FINANCE.id, text="root", metadata=META)
    assert root["message"]["metadata"] == META
    reply = await client.chat_postMessage(channel=FINANCE.id, text="r", thread_ts=root["ts"])
    moved = META | {"event_payload": {"job_id": "j1", "role": "y"}}
    await client.chat_update(channel=FINANCE.id, ts=reply["ts"], text="r2", metadata=moved)

    plain = await client.conversations_replies(channel=FINANCE.id, ts=root["ts"])
    assert metadata_of(plain["messages"]) == [None, None]
    full = await client.conversations_replies(
        channel=FINANCE.id, ts=root["ts"], include_all_metadata=True
    )
    assert metadata_of(full["messages"]) == [META, moved]
    history = await client.conversations_history(channel=FINANCE.id, include_all_metadata=True)
    assert metadata_of(history["messages"]) == [META]
    later = await client.conversations_history(
        channel=FINANCE.id, oldest=root["ts"], include_all_metadata=True
    )
    assert later["messages"] == []  # oldest is exclusive


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ("{not json", "invalid_metadata_format"),
        ({"event_type": "t"}, "invalid_metadata_schema"),
        ({"event_type": "", "event_payload": {}}, "invalid_metadata_schema"),
    ],
)
async def test_bad_metadata_is_refused(client: AsyncWebClient, metadata: Any, error: str) -> None:
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel=FINANCE.id, text="x", metadata=metadata)
    assert refused.value.response["error"] == error
