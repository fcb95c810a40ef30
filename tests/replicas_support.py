"""Helpers for the replica tests: the jobs in the shared database, their threads, and
small processes driven on stdin (tests/replica_tasks.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import select

from bot.demo import SandboxWorld
from services.jobs import Job
from services.storage.db import Database
from services.storage.jobs import SqlJobStore
from services.storage.tables import JobRow
from tests.processes import ROOT

CHANNEL = "C0FINANCE1"
RECORD_RESYNCS = "/api/v1/record-resyncs"
OUTCOMES = (
    "*Fixed.*",
    "*Still out of sync",
    "*The portal's resync failed*",
    "*Timed out.*",
    "*The resync stopped*",
)
"""How each outcome message of a job's thread starts (commands/resync_blocks.py)."""


async def all_jobs(database_url: str) -> list[Job]:
    db = Database(database_url)
    try:
        return await SqlJobStore(db).recent(limit=500)
    finally:
        await db.dispose()


async def post_root(world: SandboxWorld, text: str) -> str:
    """A message of the bot's in the channel, to hang a job's thread on."""
    slack = AsyncWebClient(token=world.emulator.bot_token, base_url=world.emulator.api_url)
    response = await slack.chat_postMessage(channel=CHANNEL, text=text)
    return str(response["ts"])


async def claims(database_url: str) -> dict[str, tuple[str | None, int]]:
    """Invoice (target) -> (the replica that ran the job last, how often it was claimed)."""
    db = Database(database_url)
    try:
        async with db.session() as session:
            rows = await session.exec(select(JobRow))
            return {row.target: (row.claimed_by, row.attempts) for row in rows}
    finally:
        await db.dispose()


def outcome_messages(world: SandboxWorld, job: Job) -> int:
    replies = world.emulator.state.replies(job.channel, job.thread_ts)
    return sum(any(marker in str(m.blocks) for marker in OUTCOMES) for m in replies)


def progress_messages(world: SandboxWorld, job: Job) -> int:
    replies = world.emulator.state.replies(job.channel, job.thread_ts)
    return sum(str(m.text).find(f"Record resync of invoice {job.target}") >= 0 for m in replies)


class Worker:
    """A tests/replica_tasks.py process: write "go", read its answer."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def line(self, timeout: float = 30) -> str:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        assert raw, "the worker exited"
        return raw.decode().strip()

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")


async def all_go(workers: Sequence[Worker]) -> list[str]:
    for worker in workers:
        worker.go()
    return list(await asyncio.gather(*(w.line() for w in workers)))


@asynccontextmanager
async def workers(env: dict[str, str], *args: str, count: int) -> AsyncIterator[list[Worker]]:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.replica_tasks",
            *args,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(count)
    ]
    started = [Worker(p) for p in processes]
    try:
        assert await asyncio.gather(*(w.line() for w in started)) == ["ready"] * count
        yield started
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
            await process.wait()
