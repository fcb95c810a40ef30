"""Slack delivery: redeliveries run once, unsigned requests do nothing, unexpected errors
show a reference id whose traceback is in the log (listener and background work alike)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot.demo import RunningBot, SandboxWorld, running_bot
from bot.door import WORK_NAME
from bot.tasks import BackgroundTasks
from sandbox.slack_emulator import Signing, sign
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


class ExplodingTasks(BackgroundTasks):
    """Starts the request's dispatch after the ack; fails to start the listener's work."""

    def spawn(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("name") == WORK_NAME:
            return super().spawn(*args, **kwargs)
        work = args[0] if args else kwargs.get("work")
        if work is not None:
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


async def test_work_waits_while_requests_are_being_answered() -> None:
    tasks = BackgroundTasks(quiet=0.02, max_delay=5)
    started: list[float] = []

    async def work() -> None:
        started.append(asyncio.get_running_loop().time())

    loop = asyncio.get_running_loop()
    tasks.request_started()
    tasks.spawn(work(), name="w")
    await asyncio.sleep(0.1)
    assert started == []  # held back while the request is answered
    finished = loop.time()
    tasks.request_finished()
    await tasks.drain(timeout=1)
    assert started and 0.015 <= started[0] - finished < 0.5


async def test_work_starts_after_the_longest_delay_under_constant_traffic() -> None:
    tasks = BackgroundTasks(quiet=0.02, max_delay=0.1)
    done: list[str] = []

    async def work() -> None:
        done.append("x")

    tasks.request_started()  # never finished: traffic without a pause
    tasks.spawn(work(), name="w")
    await tasks.drain(timeout=1)
    assert done == ["x"]


async def test_work_cancelled_before_its_turn_never_runs(recwarn: pytest.WarningsRecorder) -> None:
    tasks = BackgroundTasks(quiet=0.02, max_delay=5)
    ran: list[str] = []

    async def work() -> None:
        ran.append("x")

    tasks.request_started()
    tasks.spawn(work(), name="w")
    await asyncio.sleep(0.01)
    await tasks.cancel_all()
    assert ran == [] and not tasks.busy
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


async def test_work_waits_through_a_stream_of_short_requests() -> None:
    """Requests shorter than the quiet window, one after another: no quiet moment."""
    tasks = BackgroundTasks(quiet=0.05, max_delay=5)
    started: list[float] = []

    async def work() -> None:
        started.append(asyncio.get_running_loop().time())

    tasks.request_started()
    tasks.spawn(work(), name="w")
    tasks.request_finished()
    for _ in range(10):  # 10 requests of 10 ms, 10 ms apart: never 50 ms without one
        await asyncio.sleep(0.01)
        tasks.request_started()
        await asyncio.sleep(0.01)
        tasks.request_finished()
    assert started == []
    last = asyncio.get_running_loop().time()
    await tasks.drain(timeout=1)
    assert started and started[0] - last >= 0.045


async def test_work_born_of_requests_runs_a_few_at_a_time_other_work_does_not_wait() -> None:
    tasks = BackgroundTasks(quiet=0.01, max_delay=5, max_running=2)
    running, peak = 0, 0
    release = asyncio.Event()

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1

    tasks.request_started()
    for _ in range(5):
        tasks.spawn(work(), name="click")
    tasks.request_finished()
    await asyncio.sleep(0.1)
    assert (running, peak) == (2, 2)  # three wait for a slot
    tasks.spawn(work(), name="resumed job")  # not born of a request: runs at once
    await asyncio.sleep(0.05)
    assert running == 3
    release.set()
    await tasks.drain(timeout=1)
    assert running == 0 and not tasks.busy


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


async def test_work_started_by_held_work_is_not_held_again() -> None:
    """A request's dispatch waited for its quiet moment: the command's work it starts runs
    at once, even with new requests arriving (else it would wait a second time)."""
    tasks = BackgroundTasks(quiet=0.02, max_delay=5)
    ran: list[str] = []

    async def inner() -> None:
        ran.append("inner")

    async def outer() -> None:
        tasks.request_started()  # requests are arriving again when the held work runs
        tasks.spawn(inner(), name="inner")

    tasks.request_started()
    tasks.spawn(outer(), name="outer")
    tasks.request_finished()
    await asyncio.sleep(0.3)
    assert ran == ["inner"]
    tasks.request_finished()
    await tasks.drain(timeout=1)


async def test_work_that_never_began_is_logged_when_the_bot_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = BackgroundTasks(quiet=10, max_delay=10)
    ran: list[str] = []

    async def work() -> None:
        ran.append("x")

    tasks.request_started()
    tasks.spawn(work(), name="command:Check")  # held: requests are still arriving
    await tasks.cancel_all()
    assert ran == [] and len(tasks) == 0
    assert "1 background task(s) cancelled before they began (command:Check)" in caplog.text


async def test_work_started_by_request_work_takes_a_slot_too() -> None:
    """A burst's dispatches run at the quiet moment, when no request is in flight: the
    checks they start still run at most ``max_running`` at once."""
    tasks = BackgroundTasks(quiet=0.01, max_delay=5, max_running=2)
    running, peak = 0, 0

    async def check() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    async def dispatch() -> None:
        for _ in range(5):
            tasks.spawn(check(), name="command:Check")

    tasks.request_started()
    tasks.spawn(dispatch(), name="slack-request")
    tasks.request_finished()
    await tasks.drain(timeout=2)
    assert peak == 2
