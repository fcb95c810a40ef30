"""How fast the bot acknowledges slash commands, against a minimal bolt app on the same
standard adapter: the anchor a Slack developer would pick.

Sends N signed `/invoice check 11260` commands at 1, 5 and 20 at a time to the bot, then
the same requests to the anchor, and prints each one's ack latency (p50, p99, max) and
throughput, and their ratios. The goal: p50 and p99 within 1.1x of the anchor's, and every
request acked well inside Slack's 3 s at 20 at a time. Every request must be acked and
every check answered (the checks' messages are counted in the Slack emulator) before the
next round starts.

The anchor is bolt's `AsyncApp` behind `AsyncSlackRequestHandler` in Starlette on uvicorn,
as a Slack developer would write this bot with bolt: a `/invoice` listener that acks, and a
lazy listener (bolt's way to work after the ack) that runs the bot's own check of the
command, with the bot's container built from the same settings (its own SQLite file) and
the bot's cap on work at once (bolt's lazy listeners have none). The two do the same work
and differ only in how they ack and hand it off: the bot's listeners, middleware and
bounded runner against bolt's bare listener and lazy runner.

`--idle-anchor` gives the anchor a listener that only acks and no work at all: the ratios
then also count the checks' CPU, which the bot spends in the process that acks (by default)
and the anchor does not spend anywhere.

By default the anchor runs with the bot's bolt settings (`process_before_response=True`:
the reply leaves when the listener returns); `--anchor-defaults` runs it with bolt's
defaults instead (the listener runs in a task and bolt polls for its ack every 10 ms).

Each part runs in its own process, as it would in production: the bot (`invoicebot run`,
HTTP mode, SQLite), the anchor, the sandbox (fake QuickBooks Online, fake portal, Slack
emulator) and this client. The work after the ack (both reads, the evidence, the audit
row, the message) runs while commands are still arriving. With two CPUs or more, the bot
and the anchor run on one CPU, the client and the sandbox (at the lowest priority) on
another. The sandbox has no Intuit quota here (QBO_MAX_PER_MINUTE is raised): the round
measures the acks, and the answers are only counted. `--bot-root` runs the bot from
another checkout (to measure an older version against the same anchor in the same session).

`--work-process` runs the bot with WORK_PROCESS=true: the process that acks hands each
check to a worker process of its own (bot/work.py). The worker inherits the bot's CPU (one
CPU for the two of them, the anchor's budget) at a lower priority; the "cpu ms" column is
then the acking process's alone.

    .venv/bin/python bench/ack.py [--requests 400] [--concurrency 1 5 20] [--repeat 5]
                                  [--verbose] [--idle-anchor] [--anchor-defaults]
                                  [--bot-root PATH] [--work-process]
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
TARGET = 1.1
"""The bot's p50 and p99 ack latency must be within this factor of the anchor's."""
ACK_LIMIT = 3.0
"""Slack's limit for an ack, in seconds; "well inside" it: at most a third of it."""


# -- the parts, each in its own process ------------------------------------------------
async def serve_sandbox() -> None:
    """Child: the sandbox world; prints its coordinates, answers "count" on stdin."""
    from bot.demo import BOT_CLIENT, sandbox_world

    async with sandbox_world() as world:
        world.qbo.knobs.max_per_minute = 10**9  # the bench measures acks, not Intuit's quota
        world.qbo.knobs.max_concurrent = 10**6
        world.qbo.knobs.rotate_refresh_tokens = False  # the bot and a working anchor share it
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


def serve_anchor(port: int, config: dict[str, Any], bolt_defaults: bool, work: bool) -> None:
    """Child: a minimal bolt app on bolt's Starlette adapter and uvicorn (the bot's server).
    Its `/invoice` listener only acks; with ``work``, a lazy listener (bolt's way to work
    after the ack) then runs the bot's own work for the command, with the bot's container
    built from the environment (as ``invoicebot run`` builds it)."""
    asyncio.run(_serve_anchor(port, config, bolt_defaults, work))


async def _serve_anchor(port: int, config: dict[str, Any], bolt_defaults: bool, work: bool) -> None:
    import uvicorn
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    lazy = []
    container = None
    if work:
        from bot.bootstrap import bootstrap
        from bot.context import COMMAND
        from bot.listeners.work import run_work
        from bot.settings import Settings
        from bot.tasks import MAX_RUNNING

        container = await bootstrap(Settings().check_secrets())
        # Lazy listeners have no bound of their own: with all 400 checks of a round at once,
        # some waited on SQLite's write lock past its 5 s busy timeout. The bot's own cap.
        slots = asyncio.Semaphore(MAX_RUNNING)

        async def run_check(body: dict[str, Any]) -> None:
            async with slots:
                await run_work(container, COMMAND, body)

        lazy.append(run_check)
    os.environ.pop("SLACK_BOT_TOKEN", None)  # the client below has it (bolt warns of both)
    app = AsyncApp(
        client=AsyncWebClient(token=config["bot_token"], base_url=config["api_url"]),
        signing_secret=config["signing_secret"],
        process_before_response=not bolt_defaults,
    )

    async def ack_only(ack: Any) -> None:
        await ack()

    app.command("/invoice")(ack=ack_only, lazy=lazy)
    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    starlette = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
    config_ = uvicorn.Config(
        starlette, host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    try:
        await uvicorn.Server(config_).serve()
    finally:
        if container is not None:
            await container.aclose()


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
"""The servers measured (bot, anchor) share one CPU; this client and the sandbox the other:
the two servers run in the same conditions, whatever else the machine does. The sandbox
runs at the lowest priority: it is busy answering the bot's checks during the bot's rounds
only, and must not hold back the client that times the acks (which would count against the
bot what is the measuring client's wait)."""
CLIENT_CPUS = {0} if SERVER_CPUS else None


async def spawn(
    *args: str,
    env: dict[str, str] | None = None,
    cpus: set[int] | None = None,
    cwd: Path = ROOT,
    nice: int = 0,
) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        preexec_fn=(lambda: os.nice(nice)) if nice else None,
    )
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(process.pid, cpus)
    return process


async def answers(http: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await http.post(url, content=b"")).status_code < 500
    except httpx.TransportError:
        return False


def bot_env(config: dict[str, Any], database: Path, port: int, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "QBO_", "PORTAL_"))}
    env.update(
        PYTHONPATH=str(root),  # the bot's code from ``root`` (this checkout by default)
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
    most: float
    throughput: float
    cpu: float
    """The server's CPU milliseconds per request."""

    @classmethod
    def of(cls, rounds: list[Round]) -> Summary:
        return cls(
            statistics.median(r.p50 for r in rounds),
            statistics.median(r.p(0.99) for r in rounds),
            max(max(r.latencies) for r in rounds) * 1000,
            statistics.median(r.throughput for r in rounds),
            statistics.median(r.cpu * 1000 / len(r.latencies) for r in rounds),
        )

    def __str__(self) -> str:
        return (
            f"{self.p50:7.2f} {self.p99:7.2f} {self.most:8.1f} {self.throughput:8.0f} "
            f"{self.cpu:8.2f}"
        )


async def main(
    total: int,
    levels: list[int],
    repeat: int,
    *,
    verbose: bool = False,
    anchor_defaults: bool = False,
    bot_root: Path = ROOT,
    work_process: bool = False,
    anchor_work: bool = True,
) -> int:
    if CLIENT_CPUS and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, CLIENT_CPUS)
    sandbox = await spawn(str(Path(__file__)), "--serve-sandbox", cpus=CLIENT_CPUS, nice=19)
    assert sandbox.stdout is not None and sandbox.stdin is not None
    config = json.loads(await sandbox.stdout.readline())

    async def posted() -> int:
        assert sandbox.stdin is not None and sandbox.stdout is not None
        sandbox.stdin.write(b"count\n")
        await sandbox.stdin.drain()
        return int(await sandbox.stdout.readline())

    folder = Path(tempfile.mkdtemp(prefix="bench-ack-"))
    bot_port, anchor_port = free_port(), free_port()
    env = bot_env(config, folder / "bot.db", bot_port, bot_root)
    if work_process:
        env["WORK_PROCESS"] = "true"
    bot = await spawn("-m", "bot.cli", "run", env=env, cpus=SERVER_CPUS, cwd=bot_root)
    anchor_args = ["--serve-anchor", str(anchor_port), "--config", json.dumps(config)]
    if anchor_defaults:
        anchor_args.append("--anchor-defaults")
    anchor_env = None
    if anchor_work:
        anchor_args.append("--anchor-work")
        anchor_env = bot_env(config, folder / "anchor.db", anchor_port, ROOT)
    anchor = await spawn(str(Path(__file__)), *anchor_args, env=anchor_env, cpus=SERVER_CPUS)
    bot_url = f"http://127.0.0.1:{bot_port}/slack/events"
    anchor_url = f"http://127.0.0.1:{anchor_port}/slack/events"
    failed = False
    try:
        async with httpx.AsyncClient() as http:
            await wait_until(lambda: answers(http, bot_url), 30, "the bot to start")
            await wait_until(lambda: answers(http, anchor_url), 30, "the anchor to start")
        expected = await posted() + (40 if anchor_work else 20)
        warm = commands(config, 20, "warm")
        await send_all(bot_url, warm, 5)  # auth.test, connections, tokens: not counted
        await send_all(anchor_url, warm, 5)
        await wait_until(partial(_at_least, posted, expected), 60, "the warm-up")

        async def anchor_round(requests: list[tuple[bytes, dict[str, str]]], level: int) -> Round:
            """The anchor's round; with ``anchor_work``, until its checks are answered."""
            nonlocal expected
            measured = await send_all(anchor_url, requests, level, anchor.pid)
            if anchor_work:
                expected += total
                await wait_until(partial(_at_least, posted, expected), 300, "the anchor's answers")
            return measured

        settings = "bolt's defaults" if anchor_defaults else "process_before_response=True"
        settings += (
            ", the bot's check in a lazy listener" if anchor_work else ", acking only, no work"
        )
        print(
            f"bot from {bot_root}{' (WORK_PROCESS=true)' if work_process else ''}; anchor: a minimal bolt app ({settings}) on "
            f"AsyncSlackRequestHandler and uvicorn.\n{total} signed `/invoice check 11260` "
            f"per round, {repeat} rounds each (medians; max over all rounds); ack latency "
            f"in ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        print(
            f"{'at once':>8} {'':>6} {'p50':>7} {'p99':>7} {'max':>8} {'req/s':>8} "
            f"{'cpu ms':>8} {'answered in':>12}"
        )
        for level in levels:
            anchors, bots, answered, during = [], [], [], 0
            for turn in range(repeat):
                requests = commands(config, total, f"c{level}r{turn}")
                # Alternate who goes first (outside load falls on both alike); the bot's
                # answers are always awaited before the anchor's round begins.
                if turn % 2 == 0:
                    anchors.append(await anchor_round(requests, level))
                bots.append(await send_all(bot_url, requests, level, bot.pid))
                during += await posted() - expected
                expected += total
                took = await wait_until(partial(_at_least, posted, expected), 300, "answers")
                answered.append(bots[-1].wall + took)
                if turn % 2 == 1:
                    anchors.append(await anchor_round(requests, level))
            anchor_m, bot_m = Summary.of(anchors), Summary.of(bots)
            if verbose:
                for turn, (a, b) in enumerate(zip(anchors, bots, strict=True)):
                    print(
                        f"{'':>8} round {turn + 1}: anchor {a.p50:.2f} {a.p(0.99):.2f} "
                        f"{a.throughput:.0f}, bot {b.p50:.2f} {b.p(0.99):.2f} {b.throughput:.0f}"
                    )
            print(f"{level:>8} {'anchor':>6} {anchor_m}")
            print(f"{level:>8} {'bot':>6} {bot_m} {statistics.median(answered):9.1f} s")
            p50, p99 = bot_m.p50 / anchor_m.p50, bot_m.p99 / anchor_m.p99
            rate = bot_m.throughput / anchor_m.throughput
            acked = sum(len(r.latencies) - r.failures for r in bots)
            inside = bot_m.most <= ACK_LIMIT * 1000 / 3
            ok = max(p50, p99) <= TARGET and acked == total * repeat and inside
            failed |= not ok
            print(
                f"{'':>8} {'ratio':>6} {p50:7.2f} {p99:7.2f} {'':>8} {rate:8.2f}   "
                f"{'within' if ok else 'NOT within'} {TARGET}x; {acked}/{total * repeat} acked "
                f"(slowest {bot_m.most / 1000:.2f} s of Slack's {ACK_LIMIT:g} s) and answered "
                f"({during} answered while commands were still arriving)"
            )
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        workers = children(bot.pid)
        print(
            f"peak memory (VmHWM): anchor {peak_mb(anchor.pid):.0f} MB, bot {peak_mb(bot.pid):.0f} MB"
            + "".join(f" + worker {peak_mb(pid):.0f} MB" for pid in workers)
        )
    finally:
        for process in (bot, anchor):
            if process.returncode is None:
                process.terminate()
            await process.wait()
        assert sandbox.stdin is not None
        sandbox.stdin.close()
        await sandbox.wait()
    return 1 if failed else 0


def peak_mb(pid: int) -> float:
    """A process's peak resident memory so far (Linux; 0 elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """The direct children of a process (the bot's worker process; Linux)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


async def _at_least(count: Callable[[], Awaitable[int]], wanted: int) -> bool:
    return await count() >= wanted


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--repeat", type=int, default=5, help="rounds per level (medians)")
    parser.add_argument("--verbose", action="store_true", help="each round's figures too")
    parser.add_argument(
        "--anchor-defaults", action="store_true", help="the anchor with bolt's default settings"
    )
    parser.add_argument("--bot-root", type=Path, default=ROOT, help="run the bot from here")
    parser.add_argument(
        "--work-process", action="store_true", help="the bot with WORK_PROCESS=true"
    )
    parser.add_argument(
        "--idle-anchor",
        action="store_true",
        help="the anchor only acks (no check after the ack)",
    )
    parser.add_argument("--anchor-work", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-sandbox", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-anchor", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sandbox:
        asyncio.run(serve_sandbox())
    elif args.serve_anchor:
        serve_anchor(
            args.serve_anchor, json.loads(args.config), args.anchor_defaults, args.anchor_work
        )
    else:
        sys.exit(
            asyncio.run(
                main(
                    args.requests,
                    args.concurrency,
                    args.repeat,
                    verbose=args.verbose,
                    anchor_defaults=args.anchor_defaults,
                    bot_root=args.bot_root.resolve(),
                    work_process=args.work_process,
                    anchor_work=not args.idle_anchor,
                )
            )
        )
