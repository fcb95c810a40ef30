"""The scale sandbox in processes of its own: a fake QuickBooks Online and a fake portal,
each serving a generated world (``sandbox.scale``) on loopback with injected latency and
QBO's limits, and reporting its counters over a pipe. Benchmarks use it so that the
process they measure (the bot) holds none of the worlds' memory or CPU time.

    with scale_servers(spec, now=now, latency=0.05) as servers:
        before = servers.stats()
        ...  # the bot talks to servers.qbo_url and servers.portal_url
        after = servers.stats()
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from sandbox.portal.connect import create_portal_app
from sandbox.portal.state import PortalState
from sandbox.qbo.app import QboKnobs, QboState, create_qbo_app
from sandbox.scale import ScaleSpec, change_share, portal_state, qbo_state
from sandbox.scenarios import REALM_ID
from sandbox.server import start_server

BOT_CLIENT = ("bench-bot", "bench-bot-secret")
SIDES = ("qbo", "portal")


@dataclass(frozen=True)
class Launch:
    side: str
    spec: ScaleSpec
    now: datetime
    latency: float
    max_per_minute: int
    max_concurrent: int


def qbo_stats(state: QboState) -> dict[str, Any]:
    queries = list(state.queries)
    return {
        "requests": sum(n for path, n in state.request_counts.items() if "/v3/" in path),
        "count": sum(1 for q in queries if "count(*)" in q),
        "pages": sum(1 for q in queries if "Balance > '0'" in q and "count(*)" not in q),
        "lookups": sum(1 for q in queries if " IN (" in q),
        "throttled": state.throttle.rejected,
        "peak_in_flight": state.throttle.peak_in_flight,
        "cpu": time.process_time(),
    }


def portal_stats(state: PortalState) -> dict[str, Any]:
    return {
        "requests": sum(state.requests.values()),
        "pages": state.requests["GET /api/v1/invoices"],
        "lookups": state.requests["POST /api/v1/invoices/lookup"],
        "cpu": time.process_time(),
    }


def _serve(launch: Launch, conn: Connection) -> None:
    asyncio.run(_serve_async(launch, conn))


async def _serve_async(launch: Launch, conn: Connection) -> None:
    stats: Callable[[], dict[str, Any]]
    state: QboState | PortalState
    if launch.side == "qbo":
        knobs = QboKnobs(
            latency=launch.latency,
            max_per_minute=launch.max_per_minute,
            max_concurrent=launch.max_concurrent,
        )
        qbo = state = qbo_state(launch.spec, launch.now, knobs=knobs)
        token = qbo.register_client(*BOT_CLIENT)
        app = create_qbo_app(qbo)
        stats = lambda: qbo_stats(qbo)  # noqa: E731
    else:
        portal = state = portal_state(launch.spec, launch.now)
        portal.latency = launch.latency
        token = portal.api_key
        app = create_portal_app(portal)
        stats = lambda: portal_stats(portal)  # noqa: E731
    running = await start_server(app)
    conn.send({"url": running.url, "token": token})
    loop = asyncio.get_running_loop()
    try:
        while (asked := await loop.run_in_executor(None, conn.recv)) != "stop":
            if isinstance(asked, tuple) and asked[0] == "change":
                conn.send(change_share(state, launch.spec, asked[1]))
            elif asked == "stats":
                conn.send(stats())
            else:
                break
    finally:
        await running.stop()


@dataclass
class Servers:
    qbo_url: str
    portal_url: str
    refresh_token: str
    """The bot's first QBO refresh token (client ``BOT_CLIENT``)."""
    api_key: str
    realm_id: str
    _pipes: dict[str, Connection]

    def change(self, share: float) -> dict[str, int]:
        """Change ``share`` of the in-sync invoices on both sides (``scale.change_share``)."""
        for pipe in self._pipes.values():
            pipe.send(("change", share))
        return {side: pipe.recv() for side, pipe in self._pipes.items()}

    def stats(self) -> dict[str, dict[str, Any]]:
        """Each side's counters: requests served, and the process's CPU seconds so far."""
        for pipe in self._pipes.values():
            pipe.send("stats")
        return {side: pipe.recv() for side, pipe in self._pipes.items()}


@contextmanager
def scale_servers(
    spec: ScaleSpec,
    *,
    now: datetime,
    latency: float,
    max_per_minute: int = 500,
    max_concurrent: int = 10,
    start_timeout: float = 900.0,
) -> Iterator[Servers]:
    """Both fakes, each in a process of its own, for the duration of the block."""
    context = multiprocessing.get_context("spawn")
    processes: dict[str, Any] = {}
    pipes: dict[str, Connection] = {}
    try:
        for side in SIDES:
            parent, child = context.Pipe()
            launch = Launch(side, spec, now, latency, max_per_minute, max_concurrent)
            process = context.Process(target=_serve, args=(launch, child), daemon=True)
            process.start()
            processes[side], pipes[side] = process, parent
        ready = {}
        for side, pipe in pipes.items():
            if not pipe.poll(start_timeout):
                raise TimeoutError(f"the {side} sandbox did not start")
            ready[side] = pipe.recv()
        yield Servers(
            qbo_url=ready["qbo"]["url"],
            portal_url=ready["portal"]["url"],
            refresh_token=ready["qbo"]["token"],
            api_key=ready["portal"]["token"],
            realm_id=REALM_ID,
            _pipes=pipes,
        )
    finally:
        for pipe in pipes.values():
            with suppress(OSError):
                pipe.send("stop")
        for process in processes.values():
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
