"""Small replica processes for tests/e2e/test_replicas.py, driven line by line on stdin so that
several of them act at the same moment:

    python -m tests.replica_tasks token   # each "go": read invoice 11260 from QBO
    python -m tests.replica_tasks lease NAME TTL_SECONDS  # each "go": try to take the lease

Settings come from the environment (tests/processes.py bot_env). Prints "ready" once set
up, then one line per "go".
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from bot.bootstrap import bootstrap
from bot.settings import Settings
from services.storage import leases


async def lines() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def say(text: str) -> None:
    print(text, flush=True)


async def token() -> None:
    deps = await bootstrap(Settings(_env_file=None))
    reader = await lines()
    say("ready")
    try:
        while await reader.readline():
            try:
                invoice = await deps.accounting.get_invoice("11260")
                say(f"ok {invoice is not None}")
            except Exception as exc:
                say(f"error {type(exc).__name__}: {exc}")
    finally:
        await deps.aclose()


async def lease(name: str, ttl: float) -> None:
    deps = await bootstrap(Settings(_env_file=None))
    reader = await lines()
    say("ready")
    try:
        while await reader.readline():
            won = await leases.acquire(
                deps.db, name=name, holder=deps.replica, ttl=timedelta(seconds=ttl)
            )
            say(f"{'won' if won else 'lost'} {deps.replica}")
    finally:
        await deps.aclose()


def main() -> None:
    match sys.argv[1:]:
        case ["token"]:
            asyncio.run(token())
        case ["lease", name, ttl]:
            asyncio.run(lease(name, float(ttl)))
        case _:
            raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
