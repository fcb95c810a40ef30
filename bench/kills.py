"""kill -9 at a random moment during a full resync, then a restart, at the default settings.

Each round: a fresh sandbox and database; the bot (a real `invoicebot run` process, default
settings: REPLICA_ID the host name, the default lease, sweep and poll) is asked for a full
integration resync from invoice 11262's check, killed (SIGKILL) a random time after the
click, and started again. Reported per round: when it was killed and what the job had done
by then, how long after the restart the job finished (the process start included), and the
thread's messages: one progress message, one "Processed records", one outcome each time.
With ``--takeover`` two replicas (REPLICA_ID a and b) run and a is killed for good: b takes
the job over once a's lease has run out (within JOB_LEASE_SECONDS + JOB_SWEEP_SECONDS).

    .venv/bin/python bench/kills.py [--rounds 5] [--seed 14] [--sync-seconds 1.5] [--takeover]
    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/kills.py        # on PostgreSQL (a fresh database per round)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.demo import SandboxWorld, sandbox_world
from tests.databases import fresh_database
from tests.e2e.conftest import (
    buttons,
    channel_messages,
    press_guard_question,
    thread,
)
from tests.kill_support import FULL_SYNCS, roles
from tests.processes import REPLICA_TIMINGS, bot_env, free_port, start_bot, stop, until
from tests.replicas_support import all_jobs, claims

AT_DEFAULTS = (
    *REPLICA_TIMINGS,
    "REPLICA_ID",
    "RESYNC_POLL_SECONDS",
    "SLACK_CHANNEL_INTERVAL_SECONDS",
)


def default_env(world: SandboxWorld, database_url: str, port: int) -> dict[str, str]:
    env = bot_env(world, database_url, port)
    for name in AT_DEFAULTS:
        env.pop(name, None)
    return env


async def one_round(
    number: int, kill_after: float, sync_seconds: float, takeover: bool
) -> dict[str, object]:
    """``takeover``: a second replica (another name) runs beside the killed one and takes
    the job over; else the killed bot is started again under its own (default) name."""
    with tempfile.TemporaryDirectory() as folder:
        async with (
            fresh_database(Path(folder)) as database_url,
            sandbox_world(sync_seconds=sync_seconds, record_resync_seconds=0.5) as world,
        ):
            port = free_port()
            env = default_env(world, database_url, port)
            other = default_env(world, database_url, free_port())
            if takeover:
                env, other = env | {"REPLICA_ID": "a"}, other | {"REPLICA_ID": "b"}
            emu = world.emulator
            emu.request_url = f"http://127.0.0.1:{port}/slack/events"
            began = time.monotonic()
            first = await start_bot(env)
            start = time.monotonic() - began
            standby = await start_bot(other) if takeover else None
            try:
                await emu.send_command("/invoice", "check 11262")
                await until(lambda: any(buttons(m) for m in channel_messages(world)))
                await emu.click(emu.number_of("Resync full integration"))
                await press_guard_question(emu)
                await asyncio.sleep(kill_after)
            finally:
                await stop(first, kill=True)
            [job] = await all_jobs(database_url)
            at_kill = f"{job.state.value}, posted: {', '.join(sorted(roles(world))) or 'none'}"
            before = (await claims(database_url))[job.target]
            restarted = time.monotonic()
            second = asyncio.create_task(start_bot(env)) if standby is None else None
            while (await claims(database_url))[job.target] == before and not job.state.finished:
                assert time.monotonic() - restarted < 60, "not resumed a minute after"
                [job] = await all_jobs(database_url)
                await asyncio.sleep(0.05)
            resumed = time.monotonic() - restarted
            process = await second if second is not None else standby
            assert process is not None
            try:
                while not (await all_jobs(database_url))[0].state.finished:
                    assert time.monotonic() - restarted < 60, "not finished a minute after"
                    await asyncio.sleep(0.05)
                took = time.monotonic() - restarted
                await asyncio.sleep(1.0)  # a late duplicate would show by now
            finally:
                await stop(process)
            [job] = await all_jobs(database_url)
            root = channel_messages(world)[0]
            texts = [str(m.blocks) for m in thread(world, root.ts)]
            return {
                "round": number,
                "kill_after": kill_after,
                "at_kill": at_kill,
                "took": took,
                "resumed": resumed,
                "start": start,
                "outcome": job.outcome.value if job.outcome else None,
                "roles": Counter(roles(world)),
                "processed": sum("Processed records" in t for t in texts),
                "replies": len(texts),
                "syncs": world.portal.request_count("POST", FULL_SYNCS),
                "in_sync": "In sync" in str(root.blocks),
            }


async def main(rounds: int, seed: int, sync_seconds: float, takeover: bool) -> int:
    rng = random.Random(seed)
    bad = 0
    # Takeover: the other replica resumes within 15 s; restart: the job ends within 10 s.
    limit = 15.0 if takeover else 10.0
    after = "the kill (another replica takes over)" if takeover else "the restart"
    print(f"seed {seed}, {rounds} rounds, portal full sync lasting {sync_seconds} s")
    for number in range(1, rounds + 1):
        kill_after = round(rng.uniform(0.0, sync_seconds + 2.0), 2)
        result = await one_round(number, kill_after, sync_seconds, takeover)
        once = result["roles"] == Counter(
            {"acknowledged": 1, "progress": 1, "processed": 1, "outcome": 1}
        )
        ok = (
            once
            and result["processed"] == 1
            and result["syncs"] == 1
            and result["in_sync"]
            and float(str(result["resumed" if takeover else "took"])) < limit
        )
        bad += not ok
        print(
            f"round {number}: killed {kill_after:.2f} s after the click ({result['at_kill']}); "
            f"resumed {result['resumed']:.1f} s, finished {result['took']:.1f} s after {after} "
            f"({result['outcome']}; a fresh bot took {result['start']:.1f} s to answer); "
            f"thread: {result['replies']} replies {dict(result['roles'])}; "  # type: ignore[call-overload]
            f"portal syncs: {result['syncs']}; root in sync: {result['in_sync']}"
            + ("" if ok else "  <-- NOT OK")
        )
    print("all rounds OK" if not bad else f"{bad} round(s) not OK")
    return 1 if bad else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--sync-seconds", type=float, default=1.5)
    parser.add_argument("--takeover", action="store_true", help="kill one of two replicas")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.rounds, args.seed, args.sync_seconds, args.takeover)))
