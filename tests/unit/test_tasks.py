"""The runner of background work (bot/tasks.py): request work runs at most ``max_running`` at
once, in HTTP and Socket Mode alike; long jobs never take a slot; stopping lets request work
finish and cancels the rest. The tests count events (work started, work finished), never
time: a gate is opened when the test says so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import build_app
from bot.bootstrap import Container, bootstrap
from bot.http import build_http_app
from bot.settings import Settings
from bot.socket import socket_mode
from bot.tasks import Kind, TaskRunner
from sandbox.server import serving
from sandbox.slack.emulator import SlackEmulator
from services.errors import TransientError


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the event loop run until ``condition`` holds (the timeout only stops a hang)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


class Gate:
    """Work that waits for the test to open it, counting who is inside."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.inside = 0
        self.peak = 0
        self.done = 0

    async def work(self) -> None:
        self.inside += 1
        self.peak = max(self.peak, self.inside)
        try:
            await self.opened.wait()
        finally:
            self.inside -= 1
        self.done += 1


async def test_request_work_runs_at_most_max_running_at_once() -> None:
    runner, gate = TaskRunner(max_running=2), Gate()
    for i in range(5):
        runner.spawn(gate.work(), name=f"command:{i}")
    await until(lambda: gate.inside == 2, "two at work")
    await asyncio.sleep(0)  # give the waiting ones every chance to start: none may
    assert (gate.inside, runner.count(Kind.REQUEST, waiting=True)) == (2, 3)
    gate.opened.set()
    await runner.drain()
    assert (gate.peak, gate.done, len(runner)) == (2, 5, 0)


async def test_a_long_job_does_not_take_a_request_slot() -> None:
    runner, resync, check = TaskRunner(max_running=1), Gate(), Gate()
    runner.spawn_long(resync.work(), name="job:1")
    runner.spawn_long(resync.work(), name="job:2")
    check.opened.set()
    runner.spawn(check.work(), name="command:Check")
    await until(lambda: check.done == 1, "the check ran")
    assert resync.inside == 2  # both resyncs still running: the one slot was free anyway
    assert runner.count(Kind.LONG) == 2 and runner.count(Kind.REQUEST) == 0
    resync.opened.set()
    await runner.drain()


async def test_errors_go_to_the_work_s_error_hook() -> None:
    runner, seen = TaskRunner(), []

    async def fails() -> None:
        raise RuntimeError("kaboom")

    async def hook(exc: BaseException) -> None:
        seen.append(str(exc))

    runner.spawn(fails(), name="command:Check", on_error=hook)
    runner.spawn_long(fails(), name="job:1", on_error=hook)
    await runner.drain()
    assert seen == ["kaboom", "kaboom"]


async def test_wind_down_lets_request_work_finish_and_cancels_long_jobs(
    caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    """As at SIGTERM: the check under way finishes, the resync is cancelled (its job then
    goes to another replica), the check still waiting for a slot and anything started
    from now on never run, and the log says so."""
    runner, check, resync = TaskRunner(max_running=1), Gate(), Gate()
    cancelled: list[str] = []

    async def long_job() -> None:
        try:
            await resync.work()
        except asyncio.CancelledError:
            cancelled.append("job:1")
            raise

    runner.spawn_long(long_job(), name="job:1")
    runner.spawn(check.work(), name="command:Check")
    never: list[str] = []

    async def waiting() -> None:
        never.append("ran")

    runner.spawn(waiting(), name="command:Later")
    await until(lambda: check.inside == 1 and resync.inside == 1, "both at work")

    stopping = asyncio.create_task(runner.wind_down(grace=30))
    await asyncio.sleep(0)
    assert runner.spawn(waiting(), name="command:TooLate") is None
    check.opened.set()  # the check under way finishes within the grace
    await until(lambda: check.done == 1, "the check finished")
    # The waiting check got its slot and ran within the grace too; then the rest is cancelled.
    await stopping
    assert never == ["ran"] and cancelled == ["job:1"] and resync.done == 0
    assert not runner.busy
    assert "command:TooLate not started" in caplog.text
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


async def test_wind_down_cancels_request_work_that_outlives_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner, stuck, queued = TaskRunner(max_running=1), Gate(), Gate()
    runner.spawn(stuck.work(), name="command:Stuck")
    runner.spawn(queued.work(), name="command:Queued")
    await until(lambda: stuck.inside == 1, "the first at work")
    await runner.wind_down(grace=0)
    assert (stuck.done, queued.done, queued.peak, len(runner)) == (0, 0, 0, 0)
    assert "1 background task(s) cancelled before they began (command:Queued)" in caplog.text


# -- the same cap through bolt, in HTTP and in Socket Mode ---------------------------------
class GatedPort:
    """QuickBooks or the portal: every call waits at the gate, then fails (the person is
    told). Only QuickBooks' calls are counted (one per check)."""

    name = "QuickBooks Online"

    def __init__(self, gate: Gate, *, counted: bool) -> None:
        self.gate, self.counted = gate, counted

    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.counted:
                await self.gate.work()
            else:
                await self.gate.opened.wait()
            raise TransientError("closed for the test", system=self.name)

        return call

    async def aclose(self) -> None:
        pass


@asynccontextmanager
async def gated_bot(
    emulator: SlackEmulator, database: Path, mode: str, gate: Gate
) -> AsyncIterator[Container]:
    socket = mode == "socket"
    settings = Settings(
        _env_file=None,
        slack_bot_token=SecretStr(emulator.bot_token),
        slack_signing_secret=SecretStr("" if socket else emulator.signing_secret),
        slack_app_token=SecretStr(emulator.api.app_token) if socket else None,
        slack_mode=mode,
        slack_api_url=emulator.api_url,
        database_url=f"sqlite+aiosqlite:///{database}",
    )
    slack = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    accounting, portal = GatedPort(gate, counted=True), GatedPort(gate, counted=False)
    container = await bootstrap(settings, accounting=accounting, portal=portal, slack=slack)
    container.tasks = TaskRunner(max_running=3)
    app = build_app(container)
    try:
        if socket:
            async with socket_mode(app, settings):
                await until(lambda: emulator.api.sockets.connected, "the socket is up")
                emulator.request_url = None
                yield container
        else:
            async with serving(build_http_app(app, container)) as url:
                emulator.request_url = f"{url}/slack/events"
                yield container
    finally:
        gate.opened.set()
        await container.aclose()


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_the_same_cap_over_http_and_socket_mode(tmp_path: Path, mode: str) -> None:
    gate = Gate()
    async with (
        SlackEmulator(signing_secret="tasks-signing-secret") as emulator,
        gated_bot(emulator, tmp_path / "bot.db", mode, gate) as container,
    ):
        for number in range(11260, 11268):
            reply = await emulator.send_command("/invoice", f"check {number}")
            assert reply.status == 200 and reply.error is None, reply  # acked at once
        await until(lambda: gate.inside == 3, "three checks at QuickBooks")
        await asyncio.sleep(0)
        assert container.tasks.count(Kind.REQUEST) == 3
        assert container.tasks.count(Kind.REQUEST, waiting=True) == 5
        gate.opened.set()
        await container.tasks.drain()
        assert gate.peak == 3 and gate.done == 8
        told = emulator.state.ephemerals("U0ALICE001")
        assert len(told) == 8 and all("QuickBooks Online" in m.text for m in told)
