"""The worker process (``WORK_PROCESS=true``, bot/work.py): runs the work the acking
process hands it, one JSON line each on standard input, until that input closes.

It has its own connections (database, QuickBooks, the portal, Slack) and its own bounded
runner; it runs the scheduled daily digest (the heaviest work there is); it runs under its
own name in job claims (``<replica>-work``, from REPLICA_ID set by the acking process),
resumes the jobs left under that name and sweeps like any replica. It serves its metrics on
WORK_METRICS_PORT (default HTTP_PORT + 1): the checks' and the upstream requests' figures
are there, not on the acking process's /metrics. The QuickBooks watch and the failed-
payment poll stay in the acking process (webhooks wake the watch at once there).

It runs at a lower scheduling priority (``NICENESS``): when both want the CPU, the acks
get most of it. SIGINT is ignored (a terminal's Ctrl-C reaches the whole process group:
the acking process stops it); SIGTERM stops it as the end of its input does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys

from prometheus_client import start_http_server

from bot.bootstrap import bootstrap
from bot.cli import setup_logging
from bot.flows.resync import resume_jobs
from bot.scheduler import start_scheduler
from bot.settings import Settings
from bot.work import InProcess

log = logging.getLogger("bot.worker")


async def work(settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    container = await bootstrap(settings)
    here = container.work = InProcess(container)
    port = settings.work_metrics_port or settings.http_port + 1
    start_http_server(port, settings.http_host, registry=container.metrics.registry)
    scheduler = start_scheduler(container)  # the daily digest, when DIGEST_CHANNEL is set
    try:
        resumed = await resume_jobs(container)
        log.info("worker %s ready (%d job(s) resumed)", container.replica, resumed)
        while not stop.is_set():
            line = await _next_line(reader, stop)
            if not line:
                break
            order = json.loads(line)
            here.hand_off(str(order["work"]), order["body"])
    finally:
        if scheduler is not None:
            scheduler.shutdown()
        await container.aclose()


async def _next_line(reader: asyncio.StreamReader, stop: asyncio.Event) -> bytes:
    """The next line, or b"" at the end of the input or on SIGTERM."""
    read = asyncio.ensure_future(reader.readline())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({read, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if read.done():
        return read.result()
    read.cancel()
    return b""


NICENESS = 10
"""The worker's scheduling priority, below the acking process's: when both want the CPU,
the acks get most of it (an ack is what Slack times; the work after it can wait the few
milliseconds an ack takes). Not lower: nice 19 starved the worker beside other busy
processes of the host (a check took minutes beside four CPU-bound ones), and the idle
class let a starved worker hold SQLite's write lock."""


def main() -> None:
    os.nice(NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = Settings().check_secrets()
    setup_logging(settings.log_level)
    asyncio.run(work(settings))


if __name__ == "__main__":
    main()
