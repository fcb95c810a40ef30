"""How long `check` takes with latency injected on both sides: one round trip, not two.

Runs the sandbox (fake QBO and fake portal on loopback) with LATENCY seconds added to every
API request on each side, then times `check_invoice` against the sum of the sides (what a
sequential check would cost) and the slower side alone (the lower bound).

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


async def main(latency: float, runs: int) -> None:
    async with sandbox_world() as world:
        with tempfile.TemporaryDirectory() as folder:
            settings = world.bot_settings(database_url=f"sqlite+aiosqlite:///{Path(folder)}/b.db")
            container = await bootstrap(settings)
            try:
                await check_invoice(
                    "11260", accounting=container.accounting, portal=container.portal
                )
                world.qbo.knobs.latency = latency
                world.portal.latency = latency
                timings = []
                for _ in range(runs):
                    started = time.perf_counter()
                    result = await check_invoice(
                        "11260", accounting=container.accounting, portal=container.portal
                    )
                    timings.append(time.perf_counter() - started)
                    assert result.verdict.value == "mismatch"
            finally:
                await container.aclose()
    median = statistics.median(timings)
    print(f"check of 11260 with {latency * 1000:.0f} ms injected on each side, {runs} runs")
    print(f"  median wall time     {median * 1000:7.1f} ms")
    print(f"  p90 wall time        {sorted(timings)[int(runs * 0.9) - 1] * 1000:7.1f} ms")
    print(f"  one round trip       {latency * 1000:7.1f} ms (lower bound)")
    print(f"  sequential (2 trips) {2 * latency * 1000:7.1f} ms")
    print(f"  ratio to one trip    {median / latency:7.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.latency, args.runs))
