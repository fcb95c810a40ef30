"""A bot process killed (SIGKILL) at each moment it has told a system something and not yet
recorded it, started again at the default settings: the job resumes at once and every
message and portal write exists exactly once.

The kill comes from the sandbox (sandbox.kill), right after it answered the chosen request:
a Slack post of a job's message (by its role), or the portal's resync/sync request. One
scenario goes through all its windows in turn: the bot is killed at the first, started
again, killed at the next by the sandbox, and so on; the last start finishes the job. The
last post of a job, its outcome, is followed only by the database write that ends the job:
killed there, the verification runs again and the outcome found in the thread is updated.
On PostgreSQL with TEST_DATABASE_URL (tests/databases.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from bot.demo import SandboxWorld
from sandbox.kill import KillSwitch, Trigger
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
    Window("progress posted, its ts not saved", slack_post("progress")),
    Window("acknowledged amounts posted, not recorded", slack_post("acknowledged")),
    Window("portal sync requested, its run id not saved", portal_post(FULL_SYNCS), portal=True),
    Window("processed records posted, not recorded", slack_post("processed")),
    Window("outcome posted, the job not finished", slack_post("outcome")),
]


def fired(armed: list[Trigger]) -> bool:
    """Whether the sandbox has killed the process it was armed for."""
    return bool(armed) and armed[0].fired.is_set()


def arming(switch: KillSwitch, window: Window, armed: list[Trigger]) -> Callable[[int], None]:
    """Arm the switch for the process as soon as it is spawned: a resumed job may post
    before the bot answers."""
    return lambda pid: armed.append(switch.arm(pid, window.match))


async def start_scenario(world: SandboxWorld, start: str) -> None:
    emu = world.emulator
    if start == "record":
        await emu.send_command("/invoice", "resync 11260")
        return
    await emu.send_command("/invoice", "check 11262")
    await until(lambda: any(buttons(m) for m in channel_messages(world)))
    await emu.click(emu.number_of("Resync full integration"))
    await press_guard_question(emu)  # the run would also re-read 11266's credit


async def killed_at_each_window(
    world: SandboxWorld, database_url: str, windows: list[Window], start: str
) -> float:
    """Run the scenario (``start``: record or full) in a bot the sandbox kills at each
    window in turn, restarting it after each kill; the seconds from the last start's
    first answer to the job's end."""
    port = free_port()
    # Five kills of one job would end it at the default JOB_MAX_ATTEMPTS (5): one more.
    env = default_env(world, database_url, port) | {"JOB_MAX_ATTEMPTS": str(len(windows) + 1)}
    world.emulator.request_url = f"http://127.0.0.1:{port}/slack/events"
    first_dead_lease = None
    for number, window in enumerate(windows):
        switch = world.portal.kill_switch if window.portal else world.emulator.kill_switch
        armed: list[Trigger] = []
        bot = await start_bot(
            env,
            spawned=arming(switch, window, armed),
            may_die=partial(fired, armed),
        )
        [trigger] = armed
        try:
            if number == 0:
                await start_scenario(world, start)
            await asyncio.wait_for(trigger.fired.wait(), 20)
            await bot.wait()
        finally:
            switch.disarm()
            await stop(bot, kill=True)
        [job] = await all_jobs(database_url)
        assert not job.state.finished, f"killed at {window.name}: the job had ended already"
        owner, dead_lease = await job_lease(database_url)
        first_dead_lease = first_dead_lease or dead_lease

    last = await start_bot(env)
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
        await stop(last)
    assert job.state is JobState.DONE, (job.state, job.detail)
    # Each start took the job back at once (the same slot), none waited for a dead lease:
    assert (await job_lease(database_url))[0] == owner
    assert first_dead_lease is not None and job.finished_at is not None
    assert job.finished_at < first_dead_lease
    return took


async def test_a_record_resync_killed_at_each_window(
    world: SandboxWorld, database_url: str
) -> None:
    took = await killed_at_each_window(world, database_url, RECORD, "record")

    assert took < RESUME_SECONDS, f"finished {took:.1f} s after the last restart"
    assert world.portal.request_count("POST", RECORD_RESYNCS) == 1
    assert roles(world) == {"root": 1, "progress": 1, "outcome": 1}
    [root] = channel_messages(world)
    assert [str(m.blocks).count("*Fixed.*") for m in thread(world, root.ts)] == [0, 1]
    assert "In sync" in str(root.blocks) and "Fixed after a record resync" in str(root.blocks)
    assert deleted(world) == 0


async def test_a_full_resync_killed_at_each_window(world: SandboxWorld, database_url: str) -> None:
    world.portal.sync_duration = 0.5
    took = await killed_at_each_window(world, database_url, FULL, "full")

    assert took < RESUME_SECONDS, f"finished {took:.1f} s after the last restart"
    assert world.portal.request_count("POST", FULL_SYNCS) == 1
    assert roles(world) == {"acknowledged": 1, "progress": 1, "processed": 1, "outcome": 1}
    [root] = channel_messages(world)
    replies = thread(world, root.ts)
    assert len(replies) == 4
    assert sum("Processed records" in str(m.blocks) for m in replies) == 1
    assert "In sync" in str(root.blocks)
    assert deleted(world) == 0
