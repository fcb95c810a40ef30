"""Slack delivery: redeliveries run once, unsigned requests do nothing, unexpected errors
show a reference id whose traceback is in the log (listener and background work alike)."""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot.demo import RunningBot, SandboxWorld, running_bot
from bot.tasks import TaskRunner
from sandbox.slack.signing import Signing, sign
from services.jobs import JobState, Outcome
from tests.e2e.conftest import FAST, channel_messages, settle, thread

ALICE = "U0ALICE001"


def command_form(text: str, *, trigger: str) -> bytes:
    """A slash command as Slack sends it (the reply URL is not needed for a check)."""
    return urlencode(
        {
            "team_id": "T0SANDBOX1",
            "channel_id": "C0FINANCE1",
            "user_id": ALICE,
            "command": "/invoice",
            "text": text,
            "response_url": "http://127.0.0.1:9/unused",
            "trigger_id": trigger,
        }
    ).encode()


def upstream_requests(world: SandboxWorld) -> int:
    return sum(world.qbo.request_counts.values()) + sum(world.portal.requests.values())


async def test_a_redelivery_of_a_request_already_handled_is_acked_and_not_run(
    world: SandboxWorld, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = command_form("check 11003", trigger="1.T0SANDBOX1.first")
    first = await world.emulator.send_signed(body)
    await settle(world, bot)
    assert first.status == 200 and len(channel_messages(world)) == 1
    before = upstream_requests(world)
    for number, reason in ((1, "http_error"), (2, "connection_failed"), (3, "http_timeout")):
        again = await world.emulator.send_signed(
            body, signing=Signing(retry_num=number, retry_reason=reason)
        )
        assert again.status == 200 and again.body == ""
    await settle(world, bot)
    assert len(channel_messages(world)) == 1
    assert upstream_requests(world) == before
    assert sum("not run again" in r.getMessage() for r in caplog.records) == 3


async def test_a_redelivery_after_a_timeout_is_not_run_even_if_another_replica_had_it(
    world: SandboxWorld, bot: RunningBot
) -> None:
    body = command_form("check 11003", trigger="2.T0SANDBOX1.elsewhere")
    reply = await world.emulator.send_signed(body, signing=Signing(retry_num=1))  # http_timeout
    await settle(world, bot)
    assert reply.status == 200
    assert channel_messages(world) == [] and upstream_requests(world) == 0


async def test_a_redelivery_of_a_request_that_never_arrived_is_run_once(
    world: SandboxWorld, bot: RunningBot
) -> None:
    body = command_form("check 11003", trigger="3.T0SANDBOX1.lost")
    retry = Signing(retry_num=1, retry_reason="connection_failed")
    await world.emulator.send_signed(body, signing=retry)
    await world.emulator.send_signed(body, signing=Signing(retry_num=2, retry_reason="http_error"))
    await settle(world, bot)
    assert len(channel_messages(world)) == 1


@pytest.mark.parametrize("missing", ["both", "signature", "timestamp"])
async def test_a_request_without_a_signature_is_refused(
    world: SandboxWorld, bot: RunningBot, missing: str
) -> None:
    body = command_form("check 11260", trigger="4.T0SANDBOX1.unsigned")
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign(world.emulator.signing_secret, timestamp, body),
    }
    if missing in ("both", "signature"):
        headers.pop("X-Slack-Signature")
    if missing in ("both", "timestamp"):
        headers.pop("X-Slack-Request-Timestamp")
    async with httpx.AsyncClient() as client:
        response = await client.post(bot.url, content=body, headers=headers)
    await settle(world, bot)
    assert response.status_code == 401
    assert channel_messages(world) == [] and upstream_requests(world) == 0
    assert await bot.container.audit.recent() == []


class Exploding:
    """An accounting port whose every read fails in a way nobody planned for."""

    name = "QuickBooks Online"

    def __getattr__(self, name: str) -> Any:
        async def explode(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("kaboom: the accounting adapter fell over")

        return explode

    async def aclose(self) -> None:
        pass


def reference_in(text: str) -> str:
    found = re.search(r"Reference: `(ERR-[0-9A-F]{8})`", text)
    assert found, text
    return found.group(1)


def assert_traceback_logged(caplog: pytest.LogCaptureFixture, reference: str, needle: str) -> None:
    [record] = [r for r in caplog.records if r.name == "bot.errors" and reference in r.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert needle in caplog.text.split(reference, 1)[1]  # the traceback follows the reference


async def test_an_unexpected_error_in_background_work_shows_a_reference(
    world: SandboxWorld, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = world.bot_settings(database_url=database_url, **FAST)
    async with running_bot(settings, accounting=Exploding()) as bot:
        world.emulator.request_url = bot.url
        reply = await world.emulator.send_command("/invoice", "check 11260")
        await settle(world, bot)
    assert reply.status == 200
    [message] = world.emulator.state.ephemerals(ALICE)
    assert "Something went wrong on my side." in message.text
    assert "kaboom" not in str(message.blocks)  # the details are for the log only
    reference = reference_in(str(message.blocks))
    assert_traceback_logged(caplog, reference, "RuntimeError: kaboom")


class ExplodingTasks(TaskRunner):
    """Fails to start the listener's work."""

    def spawn(self, work: Any, **kwargs: Any) -> Any:
        work.close()
        raise RuntimeError("kaboom: could not start the work")


async def test_an_unexpected_error_in_a_listener_shows_a_reference(
    world: SandboxWorld, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    bot.container.tasks = ExplodingTasks()
    await world.emulator.send_command("/invoice", "check 11260")
    await settle(world, bot)
    [message] = [m for m in world.emulator.state.ephemerals(ALICE) if "Reference" in str(m.blocks)]
    assert "Something went wrong on my side." in message.text
    reference = reference_in(str(message.blocks))
    assert_traceback_logged(caplog, reference, "RuntimeError: kaboom: could not start")
    assert channel_messages(world) == [] and upstream_requests(world) == 0


class FailingRecordResync:
    """The real portal, except that a record resync fails in a way nobody planned for."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def resync_record(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("kaboom: the record resync fell over")


async def test_an_unexpected_error_in_a_resync_ends_the_job_with_a_reference(
    world: SandboxWorld, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    bot.container.runner.portal = FailingRecordResync(bot.container.portal)
    await world.emulator.send_command("/invoice", "resync 11260")
    await settle(world, bot)
    [job] = await bot.container.jobs.recent(limit=5)
    assert job.state is JobState.FAILED and job.outcome is Outcome.ERROR  # not left running
    [root] = channel_messages(world)
    replies = thread(world, root.ts)
    shown = " ".join(str(v.blocks) for m in replies for v in m.versions)
    assert "kaboom" not in shown and "Something went wrong on my side" in shown
    found = re.search(r"reference `(ERR-[0-9A-F]{8})`", shown)
    assert found, shown
    [record] = [r for r in caplog.records if found.group(1) in r.getMessage()]
    assert record.levelno == logging.ERROR and "RuntimeError: kaboom" in caplog.text
    assert world.portal.invoices["11260"].balance != world.qbo.invoice("11260").balance
