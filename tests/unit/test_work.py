"""Handing work off (bot/work.py): to a worker process as JSON lines on its standard input,
and here when no worker runs."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from bot.bootstrap import Container
from bot.tasks import TaskRunner
from bot.work import RESTART_DELAY, ToWorker, worker_name

ECHO = (
    "import os, sys\n"
    "out = open(sys.argv[1], 'a')\n"
    "for line in sys.stdin:\n"
    "    out.write(os.environ['REPLICA_ID'] + ' ' + line); out.flush()\n"
)


def fake_container() -> Any:
    return SimpleNamespace(tasks=TaskRunner(max_running=2), replica="slot-a")


async def lines_in(path: Path, count: int) -> list[str]:
    for _ in range(400):
        if path.exists() and len(text := path.read_text().splitlines()) >= count:
            return text
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} line(s) never came")


async def test_work_goes_to_the_worker_as_one_json_line_each(tmp_path: Path) -> None:
    out = tmp_path / "received"
    container = fake_container()
    work = ToWorker(cast(Container, container), command=(sys.executable, "-c", ECHO, str(out)))
    await work.start()
    try:
        body = {"command": "/invoice", "text": "check 11260", "user_id": "U1"}
        work.hand_off("command", body)
        work.hand_off("resync_invoice", {"actions": [{"value": "{\n}"}]})
        first, second = await lines_in(out, 2)
        assert first.split(" ", 1) == ["slot-a-work", json.dumps({"work": "command", "body": body})]
        assert json.loads(second.split(" ", 1)[1])["work"] == "resync_invoice"
        assert len(container.tasks) == 0  # nothing ran here
    finally:
        await work.stop()
    assert work.process is not None and work.process.returncode == 0  # its input closed


async def test_a_dead_worker_is_replaced_and_meanwhile_work_runs_here(tmp_path: Path) -> None:
    out = tmp_path / "received"
    container = fake_container()
    work = ToWorker(cast(Container, container), command=(sys.executable, "-c", ECHO, str(out)))
    await work.start()
    try:
        first = work.process
        assert first is not None
        first.kill()
        await first.wait()
        work.hand_off("nothing-by-this-name", {})  # no worker: run here (and logged)
        assert work.started == 1 and len(container.tasks) == 1
        await container.tasks.drain()
        for _ in range(int(RESTART_DELAY * 100) + 400):
            if work.started == 2 and work.process is not first:
                break
            await asyncio.sleep(0.01)
        assert work.started == 2
        work.hand_off("command", {"text": "check 11003"})
        [line] = await lines_in(out, 1)
        assert '"check 11003"' in line
    finally:
        await work.stop()


def test_the_worker_never_takes_the_acking_process_s_name() -> None:
    long = "x" * 40
    assert worker_name(long) != long[:40] and len(worker_name(long)) <= 40
    assert worker_name("slot-a") == "slot-a-work"
