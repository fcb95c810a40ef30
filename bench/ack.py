"""How fast the bot acknowledges slash commands, against a bare endpoint that only says 200.

Sends N signed `/invoice check 11260` commands at 1, 5 and 20 at a time to the bot, then
the same requests to a bare Starlette endpoint on the same kind of server (uvicorn), and
prints each one's ack latency (p50, p99) and throughput, and their ratio. Every request
must be acked and every check answered (the checks' messages are counted in the Slack
emulator) before the next round starts.

Each part runs in its own process, as it would in production: the bot (`invoicebot run`,
HTTP mode, SQLite), the bare endpoint, the sandbox (fake QuickBooks Online, fake portal,
Slack emulator) and this client. The bot checks each request's signature and acks it at
the door (bot/door.py); its work after the ack (bolt's dispatch, both reads, the evidence,
the audit row, the message) runs in the bot's process; it starts at the first quiet moment
(50 ms without a request) or 2 s after it was asked for at the latest (bot/tasks.py), so
the figures say how many checks were answered while commands were still arriving.
With two CPUs or more, the bot and the bare endpoint run on one CPU, the client and the
sandbox on another.
The sandbox has no Intuit quota here (QBO_MAX_PER_MINUTE is raised): the round measures
the acks, and the answers are only counted.

    .venv/bin/python bench/ack.py [--requests 400] [--concurrency 1 5 20] [--repeat 5] [--verbose]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.3
"""The bot's latency and throughput must be within this factor of the bare endpoint's."""


# -- the parts, each in its own process ------------------------------------------------
async def serve_sandbox() -> None:
    """Child: the sandbox world; prints its coordinates, answers "count" on stdin."""
    from bot.demo import BOT_CLIENT, sandbox_world

    async with sandbox_world() as world:
        world.qbo.knobs.max_per_minute = 10**9  # the bench measures acks, not Intuit's quota
        world.qbo.knobs.max_concurrent = 10**6
        print(
            json.dumps(
                {
                    "emulator": world.emulator.base_url,
                    "api_url": world.emulator.api_url,
                    "bot_token": world.emulator.bot_token,
                    "signing_secret": world.emulator.signing_secret,
                    "qbo_url": world.qbo_url,
                    "realm": world.qbo.realm_id,
                    "client": BOT_CLIENT,
                    "refresh_token": world.bot_refresh_token,
                    "portal_url": world.portal_url,
                    "portal_key": world.portal.api_key,
                }
            ),
            flush=True,
        )
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            if line.strip() == b"count":
                posted = [
                    m for m in world.emulator.state.history("C0FINANCE1") if not m.ephemeral_to
                ]
                print(len(posted), flush=True)


def serve_bare(port: int) -> None:
    """Child: a Starlette endpoint that reads the request and answers 200, on uvicorn."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def ok(request: Request) -> Response:
        await request.body()
        return Response(status_code=200)

    app = Starlette(routes=[Route("/slack/events", ok, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- the client ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sign(secret: str, timestamp: str, body: bytes) -> str:
    import hashlib
    import hmac

    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def commands(config: dict[str, Any], count: int, tag: str) -> list[tuple[bytes, dict[str, str]]]:
    """Signed slash commands as Slack sends them, ready to post."""
    timestamp = str(int(time.time()))
    requests = []
    for i in range(count):
        body = urlencode(
            {
                "token": "bench",
                "team_id": "T0SANDBOX1",
                "channel_id": "C0FINANCE1",
                "user_id": "U0ALICE001",
                "command": "/invoice",
                "text": "check 11260",
                "response_url": f"{config['emulator']}/response/bench-{tag}-{i}",
                "trigger_id": f"{tag}.{i}.bench",
            }
        ).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(config["signing_secret"], timestamp, body),
        }
        requests.append((body, headers))
    return requests


@dataclass
class Round:
    latencies: list[float]
    wall: float
    failures: int
    cpu: float = 0.0
    """CPU seconds the server process spent during the round (Linux; 0 elsewhere)."""

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, from /proc (0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def send_all(
    url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int, pid: int = 0
) -> Round:
    """Each of ``concurrency`` senders has a client and a connection of its own, as Slack's
    deliveries would: one client sharing a pool of 20 connections spends more time in the
    pool than the servers spend answering, and holds some requests back for ~0.8 s."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(limits=limits, timeout=10))
            for _ in range(concurrency)
        ]
        # Open every connection first (not counted): the round measures requests, not TCP.
        await asyncio.gather(*(client.post(url, content=b"") for client in clients))

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal failures
            while queue:
                body, headers = queue.pop()
                started = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                failures += response.status_code != 200

        started, cpu = time.perf_counter(), cpu_seconds(pid)
        await asyncio.gather(*(worker(client) for client in clients))
        wall = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu
    return Round(latencies, wall, failures, cpu)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    started = time.perf_counter()
    while not await check():
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


SERVER_CPUS = {1} if (os.cpu_count() or 1) > 1 else None
"""The servers measured (bot, bare) share one CPU; this client and the sandbox the other:
the two servers run in the same conditions, whatever else the machine does."""
CLIENT_CPUS = {0} if SERVER_CPUS else None


async def spawn(
    *args: str, env: dict[str, str] | None = None, cpus: set[int] | None = None
) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(process.pid, cpus)
    return process


async def answers(http: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await http.post(url, content=b"")).status_code < 500
    except httpx.TransportError:
        return False


def bot_env(config: dict[str, Any], database: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "QBO_", "PORTAL_"))}
    env.update(
        SLACK_BOT_TOKEN=config["bot_token"],
        SLACK_SIGNING_SECRET=config["signing_secret"],
        SLACK_MODE="http",
        SLACK_API_URL=config["api_url"],
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(port),
        QBO_BASE_URL=config["qbo_url"],
        QBO_TOKEN_URL=f"{config['qbo_url']}/oauth2/v1/tokens/bearer",
        QBO_REALM_ID=config["realm"],
        QBO_CLIENT_ID=config["client"][0],
        QBO_CLIENT_SECRET=config["client"][1],
        QBO_REFRESH_TOKEN=config["refresh_token"],
        QBO_MAX_PER_MINUTE="1000000",  # the sandbox has no quota: measure the ack alone
        PORTAL_BASE_URL=config["portal_url"],
        PORTAL_API_KEY=config["portal_key"],
        DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        DIGEST_ENABLED="false",
        LOG_LEVEL="WARNING",
    )
    return env


@dataclass
class Summary:
    p50: float
    p99: float
    throughput: float
    cpu: float
    """The server's CPU milliseconds per request."""

    @classmethod
    def of(cls, rounds: list[Round]) -> Summary:
        return cls(
            statistics.median(r.p50 for r in rounds),
            statistics.median(r.p(0.99) for r in rounds),
            statistics.median(r.throughput for r in rounds),
            statistics.median(r.cpu * 1000 / len(r.latencies) for r in rounds),
        )

    def __str__(self) -> str:
        return f"{self.p50:7.2f} {self.p99:7.2f} {self.throughput:8.0f} {self.cpu:8.2f}"


async def main(total: int, levels: list[int], repeat: int, verbose: bool = False) -> int:
    if CLIENT_CPUS and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, CLIENT_CPUS)
    sandbox = await spawn(str(Path(__file__)), "--serve-sandbox", cpus=CLIENT_CPUS)
    assert sandbox.stdout is not None and sandbox.stdin is not None
    config = json.loads(await sandbox.stdout.readline())

    async def posted() -> int:
        assert sandbox.stdin is not None and sandbox.stdout is not None
        sandbox.stdin.write(b"count\n")
        await sandbox.stdin.drain()
        return int(await sandbox.stdout.readline())

    folder = Path(tempfile.mkdtemp(prefix="bench-ack-"))
    bot_port, bare_port = free_port(), free_port()
    env = bot_env(config, folder / "bot.db", bot_port)
    bot = await spawn("-m", "bot.cli", "run", env=env, cpus=SERVER_CPUS)
    bare = await spawn(str(Path(__file__)), "--serve-bare", str(bare_port), cpus=SERVER_CPUS)
    bot_url = f"http://127.0.0.1:{bot_port}/slack/events"
    bare_url = f"http://127.0.0.1:{bare_port}/slack/events"
    failed = False
    try:
        async with httpx.AsyncClient() as http:
            await wait_until(lambda: answers(http, bot_url), 30, "the bot to start")
            await wait_until(lambda: answers(http, bare_url), 30, "the bare endpoint to start")
        expected = await posted() + 20
        warm = commands(config, 20, "warm")
        await send_all(bot_url, warm, 5)  # auth.test, connections, tokens: not counted
        await send_all(bare_url, warm, 5)
        await wait_until(partial(_at_least, posted, expected), 60, "the warm-up")
        print(
            f"{total} signed `/invoice check 11260` per round, {repeat} rounds each "
            f"(medians); ack latency in ms; load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs"
        )
        print(
            f"{'at once':>8} {'':>5} {'p50':>7} {'p99':>7} {'req/s':>8} {'cpu ms':>8} "
            f"{'answered in':>12}"
        )
        for level in levels:
            bares, bots, answered, during = [], [], [], 0
            for turn in range(repeat):
                requests = commands(config, total, f"c{level}r{turn}")
                # Alternate who goes first (outside load falls on both alike); the bot's
                # answers are always awaited before the bare endpoint's round begins.
                if turn % 2 == 0:
                    bares.append(await send_all(bare_url, requests, level, bare.pid))
                bots.append(await send_all(bot_url, requests, level, bot.pid))
                during += await posted() - expected
                expected += total
                took = await wait_until(partial(_at_least, posted, expected), 300, "answers")
                answered.append(bots[-1].wall + took)
                if turn % 2 == 1:
                    bares.append(await send_all(bare_url, requests, level, bare.pid))
            bare_m, bot_m = Summary.of(bares), Summary.of(bots)
            if verbose:
                for turn, (a, b) in enumerate(zip(bares, bots, strict=True)):
                    print(
                        f"{'':>8} round {turn + 1}: bare {a.p50:.2f} {a.p(0.99):.2f} "
                        f"{a.throughput:.0f}, bot {b.p50:.2f} {b.p(0.99):.2f} {b.throughput:.0f}"
                    )
            print(f"{level:>8} {'bare':>5} {bare_m}")
            print(f"{level:>8} {'bot':>5} {bot_m} {statistics.median(answered):9.1f} s")
            p50, p99 = bot_m.p50 / bare_m.p50, bot_m.p99 / bare_m.p99
            rate = bot_m.throughput / bare_m.throughput
            acked = sum(len(r.latencies) - r.failures for r in bots)
            ok = max(p50, p99, 1 / rate) <= TARGET and acked == total * repeat
            failed |= not ok
            print(
                f"{'':>8} {'ratio':>5} {p50:7.2f} {p99:7.2f} {rate:8.2f}   "
                f"{'within' if ok else 'NOT within'} {TARGET}x; {acked}/{total * repeat} acked "
                f"and answered ({during} answered while commands were still arriving)"
            )
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        for process in (bot, bare):
            if process.returncode is None:
                process.terminate()
            await process.wait()
        assert sandbox.stdin is not None
        sandbox.stdin.close()
        await sandbox.wait()
    return 1 if failed else 0


async def _at_least(count: Callable[[], Awaitable[int]], wanted: int) -> bool:
    return await count() >= wanted


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--repeat", type=int, default=5, help="rounds per level (medians)")
    parser.add_argument("--verbose", action="store_true", help="each round's figures too")
    parser.add_argument("--serve-sandbox", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sandbox:
        asyncio.run(serve_sandbox())
    elif args.serve_bare:
        serve_bare(args.serve_bare)
    else:
        sys.exit(asyncio.run(main(args.requests, args.concurrency, args.repeat, args.verbose)))
