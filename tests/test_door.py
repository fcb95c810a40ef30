"""HTTP mode's door: the signature is checked and the request acked before bolt reads it;
what a listener acks with reaches the person through response_url afterwards."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot.app import build_app
from bot.bootstrap import Container
from bot.http import SLACK_PATH, build_http_app
from sandbox.slack_emulator import SlackEmulator, sign
from tests.emulator_support import Untouchable, emulator_bot


@dataclass
class Door:
    client: httpx.AsyncClient
    emulator: SlackEmulator
    container: Container

    async def post(
        self, body: bytes, *, content_type: str = "application/x-www-form-urlencoded", **kw: Any
    ) -> httpx.Response:
        timestamp = str(kw.get("timestamp", int(time.time())))
        secret = kw.get("secret", self.emulator.signing_secret)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(secret, timestamp, body),
        }
        return await self.client.post(SLACK_PATH, content=body, headers=headers)

    def command(self, text: str) -> bytes:
        return urlencode(
            {
                "command": "/invoice",
                "text": text,
                "user_id": "U0ALICE001",
                "channel_id": "C0FINANCE1",
                "team_id": "T0SANDBOX1",
                "trigger_id": "1.2.3",
                "response_url": f"{self.emulator.base_url}/response/door",
            }
        ).encode()

    def replies(self) -> list[str]:
        return [str(c.params) for c in self.emulator.state.calls_to("response_url")]


@pytest.fixture
async def door(tmp_path: Path) -> AsyncIterator[Door]:
    async with SlackEmulator(signing_secret="door-signing-secret") as emulator:
        ports = Untouchable(), Untouchable()
        container = await emulator_bot(emulator, tmp_path / "door.db", *ports)
        app = build_http_app(build_app(container), container)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
                yield Door(client, emulator, container)
        finally:
            await container.aclose()


async def test_the_ack_leaves_before_bolt_reads_the_request(door: Door) -> None:
    response = await door.post(door.command("check"))  # a usage error
    assert (response.status_code, response.text) == (200, "")
    assert door.replies() == [] and len(door.container.tasks) == 1  # bolt has not run yet
    await door.container.tasks.drain(timeout=5)
    [reply] = door.replies()
    assert "Usage" in reply and "ephemeral" in reply  # privately, as Slack shows an ack


async def test_help_reaches_the_person_after_the_ack(door: Door) -> None:
    response = await door.post(door.command("help"))
    assert (response.status_code, response.text) == (200, "")
    await door.container.tasks.drain(timeout=5)
    [reply] = door.replies()
    assert "/invoice check NUMBER" in reply


@pytest.mark.parametrize(
    "signing",
    [
        {"secret": "not-the-secret"},
        {"timestamp": int(time.time()) - 6 * 60},  # stale: replayed after 5 minutes
        {"timestamp": "soon"},
    ],
)
async def test_a_request_not_signed_by_slack_is_refused_and_runs_nothing(
    door: Door, signing: dict[str, Any]
) -> None:
    response = await door.post(door.command("help"), **signing)
    assert response.status_code == 401
    assert len(door.container.tasks) == 0
    await door.container.tasks.drain(timeout=1)
    assert door.replies() == []


async def test_a_request_without_a_signature_is_refused(door: Door) -> None:
    response = await door.client.post(SLACK_PATH, content=door.command("help"))
    assert response.status_code == 401 and len(door.container.tasks) == 0


async def test_the_url_verification_challenge_is_answered_in_the_ack(door: Door) -> None:
    body = json.dumps({"type": "url_verification", "token": "t", "challenge": "c-42"})
    response = await door.post(body.encode(), content_type="application/json")
    assert response.status_code == 200 and response.json() == {"challenge": "c-42"}
    assert len(door.container.tasks) == 0


async def test_an_ssl_check_is_answered_and_runs_nothing(door: Door) -> None:
    response = await door.post(b"ssl_check=1&token=t")
    assert response.status_code == 200 and len(door.container.tasks) == 0


async def test_a_stopping_bot_still_reads_and_answers_what_it_acked(door: Door) -> None:
    response = await door.post(door.command("help"))
    assert response.status_code == 200 and door.replies() == []  # held: no quiet moment yet
    await door.container.aclose()  # as at SIGTERM, right after the ack
    [reply] = door.replies()
    assert "/invoice check NUMBER" in reply


async def test_a_body_that_is_not_utf8_is_refused_not_an_error(door: Door) -> None:
    response = await door.post(b"ssl_check=\xff\xfe&command=/invoice")  # never from Slack
    assert response.status_code == 401 and len(door.container.tasks) == 0
