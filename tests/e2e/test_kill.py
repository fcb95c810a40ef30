"""A bot process killed (SIGKILL) at each moment it has told a system something and not yet
recorded it, started again at the default settings: the job resumes at once and every
message and portal write exists exactly once.

The kill comes from the sandbox (sandbox.kill), right after it answered the chosen request:
a Slack post of a job's message (by its role), or the portal's resync/sync request. The
last post of a job, its outcome, is followed only by the database write that ends the job:
killed there, the verification runs again and the outcome found in the thread is updated.
On PostgreSQL with TEST_DATABASE_URL (tests/databases.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from bot.demo import SandboxWorld
from services.jobs import JobState
from tests.e2e.conftest import buttons, channel_messages, press_guard_question, thread
from tests.kill_support import (
    FULL_SYNCS,
    RECORD_RESYNCS,
    Match,
    default_env,
    deleted,
    job_lease,
    portal_post,
    roles,
    slack_post,
)
from tests.processes import free_port, start_bot, stop, until
from tests.replicas_support import all_jobs

RESUME_SECONDS = 5.0
"""A restarted bot (once it answers) finishes the job within this: the job resumes before
the bot serves, and its own work is well under a second."""


@dataclass(frozen=True)
class Window:
    name: str
    match: Match
    portal: bool = False
    """The portal kills (else the Slack emulator)."""


RECORD = [
    Window("root posted, its ts not saved", slack_post("root")),
    Window("progress posted, its ts not saved", slack_post("progress")),
    Window("portal resync requested, its id not saved", portal_post(RECORD_RESYNCS), portal=True),
    Window("outcome posted, the job not finished", slack_post("outcome")),
]
FULL = [
    Window("acknowledged amounts posted, not recorded", slack_post("acknowledged")),
    Window("progress posted, its ts not saved", slack_post("progress")),
    Window("portal sync requested, its run id not saved", portal_post(FULL_SYNCS), portal=True),
    Window("processed records posted, not recorded", slack_post("processed")),
    Window("outcome posted, the job not finished", slack_post("outcome")),
]


async def killed_and_restarted(
    world: SandboxWorld, database_url: str, window: Window, start: str
) -> float:
    """Run the scenario (``start``: record or full) in a bot the sandbox kills at
    ``window``; restart it; the seconds from the restarted bot's first answer to the job's
    end."""
    port = free_port()
    env = default_env(world, database_url, port)
    emu = world.emulator
    emu.request_url = f"http://127.0.0.1:{port}/slack/events"
    first = await start_bot(env)
    switch = world.portal.kill_switch if window.portal else emu.kill_switch
    trigger = switch.arm(first.pid, window.match)
    try:
        if start == "record":
            await emu.send_command("/invoice", "resync 11260")
        else:
            await emu.send_command("/invoice", "check 11262")
            await until(lambda: any(buttons(m) for m in channel_messages(world)))
            await emu.click(emu.number_of("Resync full integration"))
            await press_guard_question(emu)  # the run would also re-read 11266's credit
        await asyncio.wait_for(trigger.fired.wait(), 20)
        await first.wait()
    finally:
        switch.disarm()
        await stop(first, kill=True)
    [job] = await all_jobs(database_url)
    assert not job.state.finished, f"killed at {window.name}: the job had ended already"
    owner, dead_lease = await job_lease(database_url)
    assert dead_lease is not None

    second = await start_bot(env)
    ready = time.monotonic()
    try:
        while True:
            [job] = await all_jobs(database_url)
            if job.state.finished:
                break
            assert time.monotonic() - ready < 30, "the job did not finish after the restart"
            await asyncio.sleep(0.05)
        took = time.monotonic() - ready
        await asyncio.sleep(0.3)  # a late duplicate would show by now
    finally:
        await stop(second)
    assert job.state is JobState.DONE, (job.state, job.detail)
    # Taken back at once by the same slot, not after the dead process's lease ran out:
    assert (await job_lease(database_url))[0] == owner
    assert job.finished_at is not None and job.finished_at < dead_lease
    return took


@pytest.mark.parametrize("window", RECORD, ids=lambda w: w.name.split(",")[0].replace(" ", "-"))
async def test_a_record_resync_killed_at_each_window(
    world: SandboxWorld, database_url: str, window: Window
) -> None:
    took = await killed_and_restarted(world, database_url, window, "record")

    assert took < RESUME_SECONDS, f"{window.name}: finished {took:.1f} s after the restart"
    assert world.portal.request_count("POST", RECORD_RESYNCS) == 1
    assert roles(world) == {"root": 1, "progress": 1, "outcome": 1}
    [root] = channel_messages(world)
    assert [str(m.blocks).count("*Fixed.*") for m in thread(world, root.ts)] == [0, 1]
    assert "In sync" in str(root.blocks) and "Fixed after a record resync" in str(root.blocks)
    assert deleted(world) == 0


@pytest.mark.parametrize("window", FULL, ids=lambda w: w.name.split(",")[0].replace(" ", "-"))
async def test_a_full_resync_killed_at_each_window(
    world: SandboxWorld, database_url: str, window: Window
) -> None:
    world.portal.sync_duration = 0.5
    took = await killed_and_restarted(world, database_url, window, "full")

    assert took < RESUME_SECONDS, f"{window.name}: finished {took:.1f} s after the restart"
    assert world.portal.request_count("POST", FULL_SYNCS) == 1
    assert roles(world) == {"acknowledged": 1, "progress": 1, "processed": 1, "outcome": 1}
    [root] = channel_messages(world)
    replies = thread(world, root.ts)
    assert len(replies) == 4
    assert sum("Processed records" in str(m.blocks) for m in replies) == 1
    assert "In sync" in str(root.blocks)
    assert deleted(world) == 0
