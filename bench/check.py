"""How long `check` takes, and how many requests it sends, with latency injected on both sides.

Runs the sandbox (fake QBO and fake portal on loopback) with LATENCY seconds added to every
API request on each side, then times `check_invoice`:
- an invoice in sync: both sides are read at once, one request each: one round trip;
- an invoice out of sync, balances only (`explain=False`): still one round trip;
- out of sync, explained, the invoice's customer known (the adapter has read the invoice
  before: the watch, a repeated check): QuickBooks' batch carries the invoice, the
  customer's payments and credit memos, the portal answers the invoice with its payments:
  one request a side, one round trip;
- the same the first time the invoice is seen: the customer's payments need the first
  answer, so a second round trip;
- the same against a 1.1 portal (no `include=payments`): two portal requests, at once.

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
from services.adapters.qbo import QboClient
from services.adapters.qbo.batch import BatchBudget, CustomerHints
from services.check import check_invoice
from services.ports import AccountingSystem, BillingPortal

CASES = (
    # number, explain, forget the customers, portal embeds payments, label
    ("11003", True, False, True, "in sync"),
    ("11260", False, False, True, "out of sync, balances only"),
    ("11260", True, False, True, "explained, customer known"),
    ("11260", True, True, True, "explained, first sight"),
    ("11260", True, False, False, "explained, 1.1 portal"),
)
API = ("/query", "/batch", "/invoice")


async def timed(
    number: str, explain: bool, forget: bool, runs: int, accounting: AccountingSystem,
    portal: BillingPortal,
) -> list[float]:  # fmt: skip
    timings = []
    for _ in range(runs):
        if forget and isinstance(accounting, QboClient):
            accounting.hints = CustomerHints()
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
                for number, explain, forget, embeds, label in CASES:
                    world.portal.embeds_payments = embeds
                    if isinstance(accounting, QboClient):  # each case a minute apart
                        accounting.batch_budget = BatchBudget()
                    await check_invoice(number, accounting=accounting, portal=portal)
                    world.qbo.forget_requests()
                    world.portal.requests.clear()
                    timings = await timed(number, explain, forget, runs, accounting, portal)
                    qbo = sum(n for path, n in world.qbo.request_counts.items()
                              if path.endswith(API) or "/invoice/" in path)  # fmt: skip
                    sent = (qbo / runs, sum(world.portal.requests.values()) / runs)
                    results.append((label, number, statistics.median(timings), sent))
            finally:
                await container.aclose()
    print(f"check with {latency * 1000:.0f} ms injected on every request of each side, {runs} runs")
    print(f"  one round trip (lower bound) {latency * 1000:7.1f} ms")
    print(f"  sequential balances          {2 * latency * 1000:7.1f} ms")
    for label, number, median, (on_qbo, on_portal) in results:
        print(
            f"  {label:<28} {number}: median {median * 1000:7.1f} ms = "
            f"{median / latency:4.2f} trips; requests a check: QBO {on_qbo:.1f}, portal {on_portal:.1f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.latency, args.runs))
