"""What the adapters report goes to the bot's metrics, and the tokens they obtain to the log
redactor (so a rotated token is scrubbed from every log line from the moment it exists).

The adapters report each attempt's outcome through their ``RequestObserver`` hook; how long
each HTTP request took is measured by httpx event hooks on their clients (``timing_hooks``),
so the adapters need not know about latency, and httpx keeps its own transport: the proxies
the environment names (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY) are httpx's to honour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

import httpx

from bot.metrics import Metrics
from bot.redact import REDACTOR


class BotObserver:
    """The adapters' ``RequestObserver`` in the bot."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def request(self, system: str, outcome: str) -> None:
        self.metrics.request(system, outcome)

    def retry(self, system: str, reason: str) -> None:
        self.metrics.retry(system, reason)

    def secret(self, value: str) -> None:
        REDACTOR.learn(value)


def timing_hooks(
    metrics: Metrics, system: Callable[[httpx.Request], str]
) -> dict[str, list[Callable[..., Any]]]:
    """httpx event hooks that time each request from sending to its response's headers (the
    time the other side took to answer) into
    ``invoicebot_upstream_request_duration_seconds``. An attempt that got no answer (a
    dropped connection, a timeout) is counted by its outcome only."""
    started: WeakKeyDictionary[httpx.Request, float] = WeakKeyDictionary()

    async def sending(request: httpx.Request) -> None:
        started[request] = time.perf_counter()

    async def answered(response: httpx.Response) -> None:
        began = started.pop(response.request, None)
        if began is not None:
            metrics.upstream_seconds.labels(system(response.request)).observe(
                time.perf_counter() - began
            )

    return {"request": [sending], "response": [answered]}
