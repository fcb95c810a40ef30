"""A bot process killed (SIGKILL) during a full resync, started again, finishes the thread."""

from __future__ import annotations

import asyncio
import signal

from bot.demo import SandboxWorld
from tests.e2e.conftest import buttons, channel_messages, press_guard_question, thread
from tests.processes import bot_env, bot_process, free_port, until


async def test_killed_bot_finishes_the_full_resync_after_restart(
    world: SandboxWorld, database_url: str
) -> None:
    world.portal.sync_duration = 3.0
    port = free_port()
    env = bot_env(world, database_url, port)
    emu = world.emulator
    emu.request_url = f"http://127.0.0.1:{port}/slack/events"

    async with bot_process(env, port) as first:
        await emu.send_command("/invoice", "check 11262")
        await until(lambda: len(channel_messages(world)) == 1)
        root = channel_messages(world)[0]
        await until(lambda: buttons(root) != [])
        await emu.click(emu.number_of("Resync full integration"))
        await press_guard_question(emu)  # the run would also re-read 11266's credit
        await until(lambda: any(r.status == "running" for r in world.portal.runs.values()))
        await until(lambda: any("running" in m.text for m in thread(world, root.ts)))
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert not any("Fixed." in str(m.blocks) for m in thread(world, root.ts))

    async with bot_process(env, port):
        await until(lambda: any("Fixed." in str(m.blocks) for m in thread(world, root.ts)))
        await asyncio.sleep(0.3)

    texts = [str(m.blocks) for m in thread(world, root.ts)]
    assert sum("Fixed." in t for t in texts) == 1
    assert sum("Processed records" in t for t in texts) == 1
    assert world.portal.request_count("POST", "/api/v1/integrations/") == 1
    assert "In sync" in str(root.blocks)
