"""WORK_PROCESS=true: the process that acks Slack's requests hands their work to a worker
process of its own (bot/work.py, bot/worker.py). Real processes over real HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.demo import SandboxWorld, sandbox_world
from tests.processes import bot_env, free_port, start_bot, stop, until
from tests.replicas_support import CHANNEL, all_jobs, claims

pytestmark = pytest.mark.slow
ANSWER = 120.0
"""Seconds an answer may take: a worker's start (its imports alone take 10 s and more on a
loaded machine) and its work, at a lower priority than everything else busy there."""


@pytest.fixture
async def world() -> AsyncIterator[SandboxWorld]:
    async with sandbox_world(sync_seconds=0.3, record_resync_seconds=0.1) as w:
        yield w


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def answers(world: SandboxWorld) -> list[str]:
    """The bot's messages in the channel (a check's answer is posted there)."""
    history = world.emulator.state.history(CHANNEL)
    return [m.text + str(m.blocks) for m in history if not m.ephemeral_to]


async def test_work_runs_in_the_worker_and_a_dead_worker_is_replaced(
    world: SandboxWorld, database_url: str
) -> None:
    port, metrics_port = free_port(), free_port()
    env = bot_env(world, database_url, port) | {
        "WORK_PROCESS": "true",
        "REPLICA_ID": "front",
        "WORK_METRICS_PORT": str(metrics_port),
        # A loaded machine must not slow the worker's renewals past its lease: the job would
        # move to the acking process's sweep (rightly), and this test asks where it ran.
        "JOB_LEASE_SECONDS": "60",
    }
    bot = await start_bot(env)
    try:
        world.emulator.request_url = f"http://127.0.0.1:{port}/slack/events"
        await until(lambda: len(children(bot.pid)) == 1)
        [worker] = children(bot.pid)

        reply = await world.emulator.send_command("/invoice", "check 11260")
        assert reply.status == 200 and not reply.body.strip()  # acked empty
        await until(lambda: any("11260" in t for t in answers(world)), timeout=ANSWER)

        # A resync asked for by command: its job is claimed under the worker's name.
        await world.emulator.send_command("/invoice", "resync 11260")

        async def job_done() -> bool:
            jobs = await all_jobs(database_url)
            return bool(jobs) and all(job.state.value == "done" for job in jobs)

        for _ in range(int(ANSWER / 0.05)):
            if await job_done():
                break
            await asyncio.sleep(0.05)
        assert await job_done()
        assert (await claims(database_url))["11260"][0] == "front-work"
        async with httpx.AsyncClient() as http:  # the check is counted where it ran
            worker_metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            front_metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        counted = 'invoicebot_check_duration_seconds_count{purpose="command"} 1.0'
        assert counted in worker_metrics and counted not in front_metrics

        # The worker killed: another one starts, and the next command is answered.
        told = len(answers(world))
        os.kill(worker, signal.SIGKILL)
        await until(lambda: children(bot.pid) not in ([], [worker]), timeout=ANSWER)
        await world.emulator.send_command("/invoice", "check 11003")
        await until(
            lambda: len(answers(world)) > told and "11003" in answers(world)[-1], timeout=ANSWER
        )
    finally:
        workers = children(bot.pid) if bot.returncode is None else []
        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), 30) == 0  # a clean exit
        for pid in workers:  # the worker stopped with it
            assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)
        await stop(bot)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return "gone"


async def test_socket_mode_hands_work_to_the_worker_too(
    world: SandboxWorld, database_url: str
) -> None:
    port, metrics_port = free_port(), free_port()
    env = bot_env(world, database_url, port) | {
        "WORK_PROCESS": "true",
        "WORK_METRICS_PORT": str(metrics_port),
        "SLACK_MODE": "socket",
        "SLACK_APP_TOKEN": world.emulator.api.app_token,
        "SLACK_SIGNING_SECRET": "",
    }
    world.emulator.request_url = None
    bot = await start_bot(env)
    try:
        await until(lambda: bool(world.emulator.api.sockets.connected))
        reply = await world.emulator.send_command("/invoice", "check 11260")
        assert reply.status == 200 and reply.error is None
        await until(lambda: any("11260" in t for t in answers(world)), timeout=ANSWER)
        async with httpx.AsyncClient() as http:
            worker_metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        assert 'invoicebot_check_duration_seconds_count{purpose="command"} 1.0' in worker_metrics
    finally:
        await stop(bot)
