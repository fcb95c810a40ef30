"""How long `check` takes with latency injected on both sides: one round trip, not two.

Runs the sandbox (fake QBO and fake portal on loopback) with LATENCY seconds added to every
API request on each side, then times `check_invoice`:
- an invoice in sync: both sides are read at once, so one round trip (the lower bound);
- an invoice out of sync, balances only (`explain=False`): still one round trip;
- an invoice out of sync, explained: one more round trip gathers the evidence for the
  diagnosis (payments, credits, the portal's payments) from both sides at once.
A sequential check (one side, then the other) would cost two round trips for the balances.

    .venv/bin/python bench/check.py [--latency 0.1] [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bot.bootstrap import bootstrap
from bot.demo import sandbox_world
from services.check import check_invoice
from services.ports import AccountingSystem, BillingPortal

CASES = (
    ("11003", True, "in sync"),
    ("11260", False, "out of sync, balances only"),
    ("11260", True, "out of sync, explained (diagnosis)"),
)


async def timed(
    number: str, explain: bool, runs: int, accounting: AccountingSystem, portal: BillingPortal
) -> list[float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        await check_invoice(number, accounting=accounting, portal=portal, explain=explain)
        timings.append(time.perf_counter() - started)
    return timings


async def main(latency: float, runs: int) -> None:
    results = []
    async with sandbox_world() as world:
        with tempfile.TemporaryDirectory() as folder:
            settings = world.bot_settings(database_url=f"sqlite+aiosqlite:///{Path(folder)}/b.db")
            container = await bootstrap(settings)
            try:
                accounting, portal = container.accounting, container.portal
                await check_invoice("11260", accounting=accounting, portal=portal)  # warm up
                world.qbo.knobs.latency = latency
                world.portal.latency = latency
                for number, explain, label in CASES:
                    timings = await timed(number, explain, runs, accounting, portal)
                    results.append((label, number, statistics.median(timings)))
            finally:
                await container.aclose()
    print(f"check with {latency * 1000:.0f} ms injected on every request of each side, {runs} runs")
    print(f"  one round trip (lower bound) {latency * 1000:7.1f} ms")
    print(f"  sequential balances          {2 * latency * 1000:7.1f} ms")
    for label, number, median in results:
        print(
            f"  {label:<36} {number}: median {median * 1000:7.1f} ms = {median / latency:4.2f} trips"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.latency, args.runs))
