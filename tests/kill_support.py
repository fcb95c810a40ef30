"""Helpers for the crash-window tests: the sandbox kills the bot (sandbox.kill) right after
answering a chosen request; the tests count what each system was told."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from sqlmodel import select

from bot.demo import SandboxWorld
from sandbox.kill import Seen
from services.storage.db import Database
from services.storage.tables import JobRow
from tests.processes import REPLICA_TIMINGS, bot_env

Match = Callable[[Seen], bool]
RECORD_RESYNCS = "/api/v1/record-resyncs"
FULL_SYNCS = "/api/v1/integrations/"
KILLED_LEASE_SECONDS = 600


def default_env(world: SandboxWorld, database_url: str, port: int) -> dict[str, str]:
    """The bot's environment at the default sweep and replica name (the host name), with a
    lease long enough to tell a restart that takes its jobs back at once from one that
    waits for the dead process's lease, however slowly the machine starts a process: ten
    minutes, far beyond a whole scenario of kills and restarts even on a loaded machine
    (about 70 s), and beyond every wait of the tests (a restart waiting for it fails)."""
    env = bot_env(world, database_url, port)
    for name in (*REPLICA_TIMINGS, "REPLICA_ID"):
        env.pop(name, None)
    return env | {"JOB_LEASE_SECONDS": str(KILLED_LEASE_SECONDS)}


def slack_post(role: str) -> Match:
    """chat.postMessage of a job's message with that role (its metadata says so)."""

    def match(seen: Seen) -> bool:
        if not seen.path.endswith("/chat.postMessage"):
            return False
        try:
            body = json.loads(seen.body)
        except ValueError:
            return False
        meta = body.get("metadata") if isinstance(body, dict) else None
        payload = meta.get("event_payload") if isinstance(meta, dict) else None
        return isinstance(payload, dict) and payload.get("role") == role

    return match


def portal_post(path: str) -> Match:
    return lambda seen: seen.method == "POST" and seen.path.startswith(path)


def roles(world: SandboxWorld) -> Counter[str]:
    """How many live messages of each job role Slack has."""
    return Counter(
        str(m.metadata["event_payload"]["role"])
        for m in world.emulator.state.messages.values()
        if m.metadata is not None and not m.deleted
    )


def deleted(world: SandboxWorld) -> int:
    return sum(c.kind == "deleted" for c in world.emulator.state.changes)


async def job_lease(database_url: str) -> tuple[str | None, datetime | None]:
    """The one job's claim: who holds it, until when."""
    db = Database(database_url)
    try:
        async with db.session() as session:
            [row] = list(await session.exec(select(JobRow)))
            return row.claimed_by, row.lease_until
    finally:
        await db.dispose()
