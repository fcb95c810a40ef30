"""Prometheus metrics at ``/metrics``, in the text exposition format (version 0.0.4).

prometheus_client is not a dependency: counters and gauges with labels are a few lines.
One process-wide registry, ``METRICS``; the adapters report to it through the
``RequestObserver`` they are given, and the digest flow calls :func:`record_digest`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from services.jobs import JobState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Family:
    """One metric with a fixed set of label names; values keyed by label values."""

    def __init__(self, name: str, help: str, kind: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.kind, self.labels = name, help, kind, labels
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def _key(self, values: tuple[str, ...]) -> tuple[str, ...]:
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}")
        return tuple(str(v) for v in values)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def set(self, value: float, *labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = value

    def value(self, *labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        with self._lock:
            items = sorted(self._values.items())
        for key, value in items:
            pairs = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(self.labels, key, strict=True))
            labels = f"{{{pairs}}}" if pairs else ""
            yield f"{self.name}{labels} {_number(value)}"


class Metrics:
    """The bot's metrics; also the adapters' ``RequestObserver``."""

    def __init__(self) -> None:
        self.requests = Family(
            "invoicebot_upstream_requests_total",
            "HTTP requests to QuickBooks Online, its token endpoint and the portal, by outcome.",
            "counter",
            ("system", "outcome"),
        )
        self.retries = Family(
            "invoicebot_upstream_retries_total",
            "Requests retried after a 429, 5xx, timeout, dropped connection or refused token.",
            "counter",
            ("system", "reason"),
        )
        self.slack_requests = Family(
            "invoicebot_slack_requests_total",
            "Requests from Slack (commands, clicks, events) by what became of them.",
            "counter",
            ("outcome",),
        )
        self.errors = Family(
            "invoicebot_errors_total",
            "Errors turned into a reply to a person, by kind.",
            "counter",
            ("kind",),
        )
        self.digest_duration = Family(
            "invoicebot_digest_duration_seconds",
            "How long the latest digest took.",
            "gauge",
        )
        self.digest_finished = Family(
            "invoicebot_digest_last_finished_timestamp_seconds",
            "When the latest digest finished (Unix time).",
            "gauge",
        )
        self.digests = Family(
            "invoicebot_digests_total", "Digests run, by outcome.", "counter", ("outcome",)
        )
        self.payment_alerts = Family(
            "invoicebot_payment_alerts_total",
            "Portal payments that failed to post to QuickBooks, alerted in Slack.",
            "counter",
        )

    # RequestObserver
    def request(self, system: str, outcome: str) -> None:
        self.requests.inc(system, outcome)

    def retry(self, system: str, reason: str) -> None:
        self.retries.inc(system, reason)

    def families(self) -> list[Family]:
        return [
            self.requests,
            self.retries,
            self.slack_requests,
            self.errors,
            self.digest_duration,
            self.digest_finished,
            self.digests,
            self.payment_alerts,
        ]


METRICS = Metrics()


def record_digest(duration_seconds: float, *, ok: bool = True) -> None:
    """Call when a digest ends (the digest flow): its duration, outcome and finish time."""
    METRICS.digest_duration.set(duration_seconds)
    METRICS.digests.inc("ok" if ok else "failed")
    METRICS.digest_finished.set(time.time())


def jobs_family(counts: dict[JobState, int]) -> Family:
    family = Family(
        "invoicebot_resync_jobs", "Resync jobs in the database, by state.", "gauge", ("state",)
    )
    for state, count in counts.items():
        family.set(count, state.value)
    return family


def exposition(families: Iterable[Family]) -> str:
    return "\n".join(line for family in families for line in family.render()) + "\n"
