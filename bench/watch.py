"""How fast the QuickBooks webhook endpoint answers, and how long a change takes to reach
the channel.

Runs the sandbox and the bot (SQLite in a temporary folder), then:
- posts DELIVERIES signed CloudEvents deliveries of EVENTS events each (a tenth of them
  repeated, as Intuit redelivers) and times each answer: the events are stored before it;
- edits an invoice in the fake QuickBooks with a GRACE-second PORTAL_SYNC_GRACE_MINUTES and
  times the alert's arrival in the channel (webhook window + grace + one loop tick + check).

    .venv/bin/python bench/watch.py [--deliveries 200] [--events 10] [--grace 2]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from pydantic import SecretStr

from bot.demo import WEBHOOK_WINDOW, running_bot, sandbox_world
from bot.flows.watch import watch_of
from bot.http import QBO_WEBHOOK_PATH
from sandbox.qbo.webhooks import WebhookSender, sign

VERIFIER = "bench-verifier"


ENTITY_IDS = itertools.count(1)
"""A change's id is its entity and time to the second: each event names another entity."""


def delivery(realm: str, events: int) -> bytes:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "type": "qbo.customer.updated.v1",  # stored, not acted on: times the endpoint
                "time": now,
                "intuitentityid": str(next(ENTITY_IDS)),
                "intuitaccountid": realm,
            }
            for _ in range(events)
        ]
    ).encode()


async def main(deliveries: int, events: int, grace: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with sandbox_world(sync_seconds=0.3) as world:
            settings = world.bot_settings(
                database_url=f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}",
                qbo_webhook_verifier=SecretStr(VERIFIER),
                alert_channel=world.emulator.channel,
                portal_sync_grace_minutes=grace / 60,
                payment_alert_seconds=0,
            )
            async with running_bot(settings) as bot, httpx.AsyncClient() as client:
                url = bot.server.url + QBO_WEBHOOK_PATH
                bodies = [delivery(world.qbo.realm_id, events) for _ in range(deliveries)]
                bodies += bodies[: deliveries // 10]  # redelivered
                times = []
                for body in bodies:
                    started = time.perf_counter()
                    answer = await client.post(
                        url, content=body, headers={"intuit-signature": sign(body, VERIFIER)}
                    )
                    times.append(time.perf_counter() - started)
                    assert answer.status_code == 200, answer.text
                stored = await watch_of(bot.container).store.event_count()
                times.sort()
                print(
                    f"{len(bodies)} deliveries of {events} events ({deliveries // 10} repeated): "
                    f"answered in p50 {statistics.median(times) * 1000:.1f} ms, "
                    f"p95 {times[int(len(times) * 0.95)] * 1000:.1f} ms, "
                    f"max {times[-1] * 1000:.1f} ms; {stored} events stored "
                    f"(expected {deliveries * events})"
                )
                sender = WebhookSender(
                    realm_id=world.qbo.realm_id, url=url, verifier=VERIFIER, window=WEBHOOK_WINDOW
                )
                world.qbo.on_change = sender.notify
                started = time.perf_counter()
                world.qbo.update_invoice("11003", balance=Decimal("99.00"))
                while not world.emulator.state.history(world.emulator.channel):
                    await asyncio.sleep(0.02)
                took = time.perf_counter() - started
                print(
                    f"invoice edited in QuickBooks -> alert in the channel: {took:.2f} s "
                    f"(webhook window {WEBHOOK_WINDOW:g} s + grace {grace:g} s + loop tick "
                    f"{max(0.2, grace / 5):g} s at most + the check)"
                )
                await sender.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=200)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--grace", type=float, default=2.0, help="seconds")
    args = parser.parse_args()
    asyncio.run(main(args.deliveries, args.events, args.grace))
