"""How fast, how frugal and how exact the digest is, on sandbox worlds of 10k to 1M invoices.

The fake QBO and the fake portal run in processes of their own (``sandbox.scale_server``),
each adding LATENCY to every request; the fake QBO enforces Intuit's limits (500 requests a
minute and 10 at a time per company, answering 429 above them). The digest runs here, in
the bot's process, through the bot's own adapters (``bootstrap``), and its answer is
checked against the world's spec. Printed per side:

- requests made against the minimum: ceil(open/1000) list pages on each side, plus
  ceil(one-sided/1000) look-ups (QBO: ``DocNumber IN (...)``; portal: ``/invoices/lookup``).
  The QBO side also makes one ``count(*)``: it is what lets its pages be fetched 10 at a
  time instead of one after the other (STARTPOSITION paging is otherwise sequential).
- wall time against the lower bound the limits and latencies allow:
  * portal: its list pages follow a cursor, so they are sequential: pages x latency;
  * QBO: pages can go 10 at a time, and at most 500 may start in any 60 s, so request
    k (0-based) cannot start before (k // 10) x latency nor before (k // 500) x 60 s
    (computed exactly by a greedy schedule);
  * look-ups can only start once both listings are done (only then is "open on one side
    only" known): one more latency on the portal (no limits), and the QBO schedule
    continued (its 60 s window still counts the listing's requests).
  The bound is the later of the two sides. A second bound adds each fake server's own CPU
  time per request (measured) to the latency: the fakes render JSON in one process each,
  which no client can make faster.
- the bot process's peak memory (ru_maxrss), with the baseline before the scan: the bot
  decodes both sides' pages itself (msgspec), in its event loop, and starts no process;
- the longest the event loop was held at once during the scan (a ticker asks for a turn
  every millisecond and records the most CPU time the loop's thread spent between two
  turns, and the longest gap in wall time), and the full collections of Python's garbage
  collector that ran during the scan (each walks every object of the bot's process, ~100 ms
  here, whatever code happened to allocate), with the longest hold apart from them. A page
  is decoded in a few milliseconds; a turn of the loop can hold several pages that arrived
  together. The listings are decoded in the loop because no page comes near the 50 ms that
  would call for a process pool.

With --naive, the same world at 10k is also compared the way a quick script would: for each
invoice, one QBO request then one portal request, one after the other. It is run on a sample
(500 invoices by default) and extrapolated, rate limit included.

    .venv/bin/python bench/digest.py --sizes 10k,100k,1m [--latency 0.05] [--naive]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from bot.bootstrap import Container, bootstrap
from bot.flows.digest import scan
from bot.settings import Settings
from sandbox.scale import DISCREPANCIES, RECENT, ScaleSpec, expect, rows
from sandbox.scale_server import BOT_CLIENT, Servers, scale_servers
from services.digest import DigestResult
from services.digest_incremental import run_incremental_digest
from services.digest_scan import run_digest
from services.models import utcnow

PAGE = 1000
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}


class QboSchedule:
    """The earliest time each QBO request can end: C at a time, M starts per window."""

    def __init__(self, latency: float, concurrency: int = 10, per_window: int = 500) -> None:
        self.latency, self.per_window = latency, per_window
        self.free = [0.0] * concurrency
        self.starts: list[float] = []

    def run(self, requests: int, *, not_before: float = 0.0) -> float:
        end = not_before
        for _ in range(requests):
            start = max(heapq.heappop(self.free), not_before)
            if len(self.starts) >= self.per_window:
                start = max(start, self.starts[-self.per_window] + 60.0)
            self.starts.append(start)
            heapq.heappush(self.free, start + self.latency)
            end = max(end, start + self.latency)
        return end


def lower_bound(
    *, qbo_latency: float, portal_latency: float, pages: dict[str, int], lookups: dict[str, int]
) -> float:
    qbo = QboSchedule(qbo_latency)
    listed = max(qbo.run(pages["qbo"]), pages["portal"] * portal_latency)
    qbo_end = qbo.run(lookups["qbo"], not_before=listed)
    portal_end = listed + (portal_latency if lookups["portal"] else 0.0)
    return max(qbo_end, portal_end)


def bot_settings(servers: Servers, folder: str) -> Settings:
    return Settings(
        _env_file=None,
        qbo_base_url=servers.qbo_url,
        qbo_token_url=f"{servers.qbo_url}/oauth2/v1/tokens/bearer",
        qbo_realm_id=servers.realm_id,
        qbo_client_id=BOT_CLIENT[0],
        qbo_client_secret=SecretStr(BOT_CLIENT[1]),
        qbo_refresh_token=SecretStr(servers.refresh_token),
        portal_base_url=servers.portal_url,
        portal_api_key=SecretStr(servers.api_key),
        database_url=f"sqlite+aiosqlite:///{folder}/bench.db",
    )


@asynccontextmanager
async def bot_and_world(
    spec: ScaleSpec, latency: float
) -> AsyncIterator[tuple[Servers, Container]]:
    """The world's fakes in their own processes, and the bot's container here."""
    with (
        scale_servers(spec, now=utcnow(), latency=latency) as servers,
        tempfile.TemporaryDirectory() as folder,
    ):
        container = await bootstrap(bot_settings(servers, folder))
        try:
            yield servers, container
        finally:
            await container.aclose()


def diff(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return {key: after[key] - before[key] for key in after if key != "peak_in_flight"}


async def warm_portal(servers: Servers) -> None:
    """One small listing request to the fake portal before the scan, outside the counts: a
    freshly started server's first answer costs ~40 ms of one-time work (first calls, empty
    caches) that a portal in service does not pay. (QBO is not warmed: a request would take
    one of the scan's 500 a minute; its first answer is not on the scan's critical path.)"""
    async with httpx.AsyncClient(base_url=servers.portal_url) as http:
        response = await http.get(
            "/api/v1/invoices",
            params={"status": "open", "limit": 1},
            headers={"X-API-Key": servers.api_key},
        )
        response.raise_for_status()


def mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class LoopWatch:
    """The longest the event loop was held at once: a task asks for a turn every ``tick``
    seconds and records how much later than asked it got it (``wall``), and how much CPU
    time the loop's thread spent meanwhile (``cpu``: what the loop itself computed, not
    time the machine's other processes took from it).

    Python's cyclic garbage collector is watched too (``gc.callbacks``, observation only):
    a full collection walks every object of the process, whatever code allocated last, so
    the holds are also told apart: ``apart`` is the longest hold that had no full
    collection in it, ``collections`` how many ran during the watch, ``collecting`` the
    longest of them (CPU time)."""

    def __init__(self, tick: float = 0.001) -> None:
        self.tick, self.wall, self.cpu, self.apart = tick, 0.0, 0.0, 0.0
        self.collections, self.collecting = 0, 0.0
        self._started = 0.0
        self._task: asyncio.Task[None] | None = None

    def _collector(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.collections += 1
            self.collecting = max(self.collecting, time.thread_time() - self._started)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked, computed, collections = loop.time(), time.thread_time(), self.collections
            await asyncio.sleep(self.tick)
            held = time.thread_time() - computed
            self.wall = max(self.wall, loop.time() - asked - self.tick)
            self.cpu = max(self.cpu, held)
            if self.collections == collections:
                self.apart = max(self.apart, held)

    def __enter__(self) -> LoopWatch:
        gc.callbacks.append(self._collector)
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._collector)
        if self._task is not None:
            self._task.cancel()


async def measure(n: int, latency: float) -> None:
    spec = ScaleSpec(open_invoices=n)
    expected = expect(spec)
    async with bot_and_world(spec, latency) as (servers, container):
        await warm_portal(servers)
        before, baseline, cpu = servers.stats(), mb(), time.process_time()
        with LoopWatch() as watch:
            result = await scan(container)  # what `/invoice digest` runs
        bot_cpu, peak, after = time.process_time() - cpu, mb(), servers.stats()
    qbo, portal = diff(after["qbo"], before["qbo"]), diff(after["portal"], before["portal"])
    minimum = {
        "qbo": (math.ceil(expected.qbo_open / PAGE), math.ceil(expected.portal_only / PAGE)),
        "portal": (math.ceil(expected.portal_open / PAGE), math.ceil(expected.qbo_only / PAGE)),
    }
    made = {"qbo": (qbo["pages"], qbo["lookups"]), "portal": (portal["pages"], portal["lookups"])}
    pages = {side: minimum[side][0] for side in minimum}
    lookups = {side: minimum[side][1] for side in minimum}
    bound = lower_bound(qbo_latency=latency, portal_latency=latency, pages=pages, lookups=lookups)
    served = {
        "qbo": qbo["cpu"] / max(1, qbo["requests"]),
        "portal": portal["cpu"] / max(1, portal["requests"]),
    }
    fakes_bound = max(
        lower_bound(
            qbo_latency=latency + served["qbo"],
            portal_latency=latency + served["portal"],
            pages=pages,
            lookups=lookups,
        ),
        qbo["cpu"] + latency,  # one process renders every QBO page
        portal["cpu"] + latency,
    )
    wall = result.duration.total_seconds()
    exact = (
        all(result.count(kind) == expected.kinds[kind] for kind in DISCREPANCIES)  # type: ignore[arg-type]
        and {d.number for d in result.discrepancies} == set().union(*expected.numbers.values())
        and result.skipped_recent == expected.kinds[RECENT]
        and result.open_invoices == expected.open_invoices
    )
    print(f"\n== N = {n:,} invoices open on either side; {latency * 1000:.0f} ms per request ==")
    print(
        f"   world: QBO open {expected.qbo_open:,}, portal open {expected.portal_open:,}; "
        + ", ".join(f"{k} {expected.kinds[k]:,}" for k in (*DISCREPANCIES, RECENT))
    )
    print(f"   {'':28}{'QuickBooks Online':>22}{'portal':>18}")
    for label, index in (("list pages", 0), ("look-ups", 1)):
        cells = [f"{made[s][index]:,} (min {minimum[s][index]:,})" for s in ("qbo", "portal")]
        print(f"   {label:28}{cells[0]:>22}{cells[1]:>18}")
    print(f"   {'count(*)':28}{qbo['count']:>22}{'-':>18}")
    print(f"   {'requests in all (retries too)':28}{qbo['requests']:>22,}{portal['requests']:>18,}")
    print(
        f"   {'server CPU per request':28}{served['qbo'] * 1000:>19.1f} ms{served['portal'] * 1000:>15.1f} ms"
    )
    print(
        f"   QBO 429s: {qbo['throttled']}, peak in flight at QBO: {after['qbo']['peak_in_flight']}"
    )
    print(f"   wall time {wall:8.2f} s   lower bound {bound:7.2f} s   ratio {wall / bound:5.2f}x")
    print(
        f"   with the fakes' CPU time   bound {fakes_bound:7.2f} s   ratio {wall / fakes_bound:5.2f}x"
    )
    print(f"   bot CPU during the scan {bot_cpu:.1f} s")
    print(f"   bot peak memory {peak:.0f} MB (ru_maxrss; {baseline:.0f} MB before the scan)")
    print(f"   event loop held at most {watch.cpu * 1000:.1f} ms of CPU at once, pages decoded in it "
          f"({watch.wall * 1000:.1f} ms of wall time, the machine's other load included)")  # fmt: skip
    print(f"   full collections of Python's garbage collector during the scan: {watch.collections}"
          f" (the longest {watch.collecting * 1000:.1f} ms of CPU); the loop held at most "
          f"{watch.apart * 1000:.1f} ms apart from them")  # fmt: skip
    print(f"   answer {'exactly as seeded' if exact else 'WRONG'}: {len(result.discrepancies):,} discrepancies, "
          f"{result.skipped_recent:,} skipped as recent, {result.compared:,} compared")  # fmt: skip


async def naive(n: int, latency: float, sample: int) -> None:
    spec = ScaleSpec(open_invoices=n)
    numbers = [row.number for row, _ in zip(rows(spec), range(sample), strict=False)]
    async with bot_and_world(spec, latency) as (servers, container):
        before = servers.stats()
        started = time.perf_counter()
        for number in numbers:
            await container.accounting.get_invoice(number)
            await container.portal.get_invoice(number)
        took = time.perf_counter() - started
        after = servers.stats()
    requests = sum(after[s]["requests"] - before[s]["requests"] for s in after)
    each = took / len(numbers)
    rate_floor = ((n - 1) // 500) * 60.0 + each  # QBO: 500 starts a minute
    estimate = max(n * each, rate_floor)
    print(f"\n== naive baseline at N = {n:,}: one request per invoice on each side, in turn ==")
    print(f"   measured on a sample of {len(numbers)} invoices: {took:.1f} s, {requests} requests")
    print(f"   {each * 1000:.0f} ms per invoice -> {n * each / 60:.1f} min for {n:,}; QBO's 500/min "
          f"alone needs {rate_floor / 60:.1f} min")  # fmt: skip
    print(
        f"   estimate (extrapolated, not run in full): {estimate / 60:.1f} min, {2 * n:,} requests"
    )


async def incremental(n: int, latency: float, share: float) -> None:
    """A full scan, then ``share`` of the invoices changed on both sides, then the
    incremental digest and a full scan of the changed world: their answers compared."""
    spec = ScaleSpec(open_invoices=n)
    async with bot_and_world(spec, latency) as (servers, container):
        await warm_portal(servers)
        ports: dict[str, Any] = {
            "accounting": container.accounting,
            "portal": container.portal,
            "tolerance": container.settings.money_tolerance,
            "recent": timedelta(0),  # the changes are seconds old: compare them all
        }

        async def timed(work: Awaitable[DigestResult]) -> tuple[DigestResult, float, int]:
            before, started = servers.stats(), time.perf_counter()
            result = await work
            took, after = time.perf_counter() - started, servers.stats()
            return result, took, sum(after[s]["requests"] - before[s]["requests"] for s in after)

        first, _, _ = await timed(run_digest(**ports))
        changed = servers.change(share)
        since = first.started_at - timedelta(minutes=1)
        quick, quick_wall, quick_requests = await timed(
            run_incremental_digest(
                **ports,
                since=since,
                carried=first.carried,
                known=first.accounting_kept,
                open_invoices=first.open_invoices,
            )
        )
        full, full_wall, full_requests = await timed(run_digest(**ports))
    same = quick.discrepancies == full.discrepancies
    print(f"\n== incremental digest at N = {n:,}, {share:.1%} changed; {latency * 1000:.0f} ms "
          "per request ==")  # fmt: skip
    print(f"   changed: QBO {changed['qbo']:,}, portal {changed['portal']:,}; carried from the "
          f"last digest {len(first.carried):,}; re-read {quick.reread:,}")  # fmt: skip
    print(f"   full scan    {full_requests:6,} requests  {full_wall:7.2f} s")
    print(f"   incremental  {quick_requests:6,} requests  {quick_wall:7.2f} s   "
          f"= {quick_requests / full_requests:.1%} of the requests, "
          f"{quick_wall / full_wall:.1%} of the time")  # fmt: skip
    print(f"   answer {'identical to the full scan' if same else 'DIFFERENT'}: "
          f"{len(full.discrepancies):,} discrepancies")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="10k,100k", help="comma separated: 10k, 100k, 1m or a number"
    )
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--naive", action="store_true", help="also the naive baseline at 10k")
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument(
        "--incremental", action="store_true", help="the incremental digest after a full one"
    )
    parser.add_argument("--changed", type=float, default=0.01, help="share changed (--incremental)")
    args = parser.parse_args()
    if args.incremental:
        for size in [s.strip().lower() for s in args.sizes.split(",") if s.strip()]:
            asyncio.run(incremental(SIZES.get(size) or int(size), args.latency, args.changed))
        return
    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    if len(sizes) > 1 or args.naive:  # one fresh process per measurement: its own peak memory
        for size in sizes:
            command = [sys.executable, __file__, "--sizes", size, "--latency", str(args.latency)]
            subprocess.run(command, check=True)
        if args.naive:
            subprocess.run([sys.executable, __file__, "--sizes", "naive", "--latency", str(args.latency), "--sample", str(args.sample)], check=True)  # fmt: skip
        return
    if sizes == ["naive"]:
        asyncio.run(naive(SIZES["10k"], args.latency, args.sample))
    else:
        size = SIZES.get(sizes[0]) or int(sizes[0])
        asyncio.run(measure(size, args.latency))


if __name__ == "__main__":
    main()
