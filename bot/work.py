"""Where listeners hand their work after the ack (the ``Handoff`` port of bot/tasks.py).

- ``InProcess``: the work runs in this process, through the bounded runner
  (``container.tasks``): at most ``MAX_RUNNING`` at once, the same in HTTP and Socket Mode.
- ``ToWorker`` (``WORK_PROCESS=true``): the work runs in a worker process of its own
  (``python -m bot.worker``, started with this process's environment), so the process that
  acks Slack's requests does nothing else on their behalf: an ack never waits for a check's
  CPU. Each piece of work goes to the worker as one JSON line on its standard input (its
  name and the request's body, see bot/listeners/work.py); the worker runs it through its
  own bounded runner. A worker that exits is started again; work handed off while none is
  running runs here instead. Closing its standard input stops it: request work gets its
  grace, running jobs go to the other replicas (or to the next worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from typing import Any

from bot.bootstrap import Container
from bot.listeners.work import run_work

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0
"""Seconds before a worker that exited is started again."""


class InProcess:
    def __init__(self, container: Container) -> None:
        self.container = container

    def hand_off(self, name: str, body: dict[str, Any]) -> None:
        self.container.tasks.spawn(run_work(self.container, name, body), name=f"work:{name}")


def worker_name(replica: str) -> str:
    """The worker's name in job claims: never this process's own (names are cut at 40)."""
    return f"{replica[:35]}-work"


WORKER = (sys.executable, "-m", "bot.worker")
"""The worker's command line."""


class ToWorker:
    def __init__(
        self,
        container: Container,
        *,
        stop_timeout: float = 15.0,
        command: tuple[str, ...] = WORKER,
    ) -> None:
        self.container = container
        self.command = command
        self.here = InProcess(container)
        self.stop_timeout = stop_timeout
        self.process: asyncio.subprocess.Process | None = None
        self.started = 0
        """Workers started so far (the first, then one for each that exited)."""
        self._stopping = False
        self._keeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._spawn()
        self._keeper = asyncio.create_task(self._keep(), name="worker-keeper")

    async def _spawn(self) -> None:
        env = dict(os.environ, REPLICA_ID=worker_name(self.container.replica))
        self.process = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.PIPE, env=env
        )
        self.started += 1
        log.info("worker process %d started", self.process.pid)

    async def _keep(self) -> None:
        while not self._stopping and self.process is not None:
            code = await self.process.wait()
            if self._stopping:
                return
            log.warning("worker process exited (%s): starting another", code)
            await asyncio.sleep(RESTART_DELAY)
            if not self._stopping:
                await self._spawn()

    def hand_off(self, name: str, body: dict[str, Any]) -> None:
        process = self.process
        pipe = None if process is None or process.returncode is not None else process.stdin
        if pipe is None or pipe.is_closing():
            log.warning("no worker process running: %s runs here", name)
            self.here.hand_off(name, body)
            return
        pipe.write(json.dumps({"work": name, "body": body}).encode() + b"\n")

    async def stop(self) -> None:
        """Close the worker's input and wait for it to wind down (killed past the timeout)."""
        self._stopping = True
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.wait([self._keeper])
        process = self.process
        if process is None or process.returncode is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), self.stop_timeout)
        except TimeoutError:
            log.warning("worker process %d did not stop in time: killed", process.pid)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
