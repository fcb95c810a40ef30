"""What the adapters report goes to the bot's metrics, and the tokens they obtain to the log
redactor (so a rotated token is scrubbed from every log line from the moment it exists).

The adapters report each attempt's outcome through their ``RequestObserver`` hook; how long
each HTTP request took is measured one layer down, by the httpx transport they are given
(``TimedTransport``), so the adapters need not know about latency at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from bot.metrics import Metrics
from bot.redact import REDACTOR
from services.adapters.proxies import EnvProxyTransport


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


class TimedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that times each request it sends (headers received: the time the
    other side took to answer) into ``invoicebot_upstream_request_duration_seconds``."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        metrics: Metrics,
        system: Callable[[httpx.Request], str],
    ) -> None:
        self.inner, self.metrics, self.system = inner, metrics, system

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.metrics.upstream_seconds.labels(self.system(request)).observe(
                time.perf_counter() - started
            )

    async def aclose(self) -> None:
        await self.inner.aclose()


def timed(
    inner: httpx.AsyncBaseTransport | None, metrics: Metrics, system: Callable[[httpx.Request], str]
) -> TimedTransport:
    """``inner`` (when None, httpx's own transport through the proxies the environment
    names, as httpx would use them) timed per request."""
    return TimedTransport(inner or EnvProxyTransport(), metrics, system)
