"""Prometheus metrics, served at ``/metrics`` (bot/http.py).

Each container has its own ``Metrics`` and so its own ``CollectorRegistry``: two bots in one
test process count apart. The adapters report each HTTP attempt through the
``RequestObserver`` they are given (bot/observe.py); the flows call the methods below.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from services.jobs import JobState

CONTENT_TYPE = CONTENT_TYPE_LATEST

UPSTREAM_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CHECK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DIGEST_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class Metrics:
    """The bot's metrics, in a registry of their own (``registry``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        ProcessCollector(registry=registry)  # process_cpu_seconds_total, memory, open fds
        PlatformCollector(registry=registry)  # python_info
        self.upstream_requests = Counter(
            "invoicebot_upstream_requests",
            "HTTP requests to QuickBooks Online, its token endpoint and the portal, by outcome.",
            ("system", "outcome"),
            registry=registry,
        )
        self.upstream_retries = Counter(
            "invoicebot_upstream_retries",
            "Requests retried after a 429, 5xx, timeout, dropped connection or refused token.",
            ("system", "reason"),
            registry=registry,
        )
        self.upstream_seconds = Histogram(
            "invoicebot_upstream_request_duration_seconds",
            "How long each HTTP request to QuickBooks Online or the portal took (one attempt).",
            ("system",),
            buckets=UPSTREAM_BUCKETS,
            registry=registry,
        )
        self.slack_requests = Counter(
            "invoicebot_slack_requests",
            "Requests from Slack (commands, clicks, events) that middleware answered itself.",
            ("outcome",),
            registry=registry,
        )
        self.errors = Counter(
            "invoicebot_errors",
            "Errors turned into a reply to a person, by kind.",
            ("kind",),
            registry=registry,
        )
        self.check_seconds = Histogram(
            "invoicebot_check_duration_seconds",
            "How long checking one invoice on both sides took, by what asked for it.",
            ("purpose",),
            buckets=CHECK_BUCKETS,
            registry=registry,
        )
        self.digest_seconds = Histogram(
            "invoicebot_digest_duration_seconds",
            "How long a digest's scan took, by outcome.",
            ("outcome",),
            buckets=DIGEST_BUCKETS,
            registry=registry,
        )
        self.digest_finished = Gauge(
            "invoicebot_digest_last_finished_timestamp_seconds",
            "When the latest digest finished (Unix time).",
            registry=registry,
        )
        self.payment_alerts = Counter(
            "invoicebot_payment_alerts",
            "Portal payments that failed to post to QuickBooks, alerted in Slack.",
            registry=registry,
        )
        self.resync_jobs = Gauge(
            "invoicebot_resync_jobs",
            "Resync jobs in the database, by state (read at each scrape).",
            ("state",),
            registry=registry,
        )
        self.background_tasks = Gauge(
            "invoicebot_background_tasks",
            "Background work in this process: request work running or waiting for a slot, "
            "and long jobs (resyncs, digests).",
            ("kind", "state"),
            registry=registry,
        )

    # The adapters' RequestObserver (through bot/observe.py).
    def request(self, system: str, outcome: str) -> None:
        self.upstream_requests.labels(system, outcome).inc()

    def retry(self, system: str, reason: str) -> None:
        self.upstream_retries.labels(system, reason).inc()

    def digest_ended(self, seconds: float, *, ok: bool) -> None:
        """A digest's scan ended (the digest flow): its duration, outcome and finish time."""
        self.digest_seconds.labels("ok" if ok else "failed").observe(seconds)
        self.digest_finished.set(time.time())

    def watch_tasks(self, count: Callable[[str, bool], int]) -> None:
        """Read the background work at each scrape: ``count(kind, waiting)``."""
        for kind in ("request", "long"):
            for state, waiting in (("running", False), ("waiting", True)):
                gauge = self.background_tasks.labels(kind, state)
                gauge.set_function(partial(count, kind, waiting))

    def set_jobs(self, counts: dict[JobState, int] | None) -> None:
        """The resync jobs by state, as just read; None (unreadable) leaves no stale figure."""
        self.resync_jobs.clear()
        for state, number in (counts or {}).items():
            self.resync_jobs.labels(state.value).set(number)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
