"""Slack redeliveries: a request Slack sends again (``X-Slack-Retry-Num``) is run once.

Slack redelivers an event when the first delivery was not acknowledged in time or failed.
A redelivery is acknowledged without running it again when this process has already seen
that delivery (same ``event_id`` or ``trigger_id``), or when Slack says the first one timed
out (``http_timeout``: it reached a replica, which is still working on it). A redelivery of
something never seen after a failed connection is run: that is its first arrival.
Resyncs are once-only in the database anyway; this keeps checks and replies single too.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncBoltRequest
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.response import BoltResponse

from bot.metrics import Metrics

log = logging.getLogger(__name__)

RETRY_NUM = "x-slack-retry-num"
RETRY_REASON = "x-slack-retry-reason"
ARRIVED_REASONS = frozenset({"http_timeout"})
"""Retry reasons that mean the first delivery reached the bot."""


class SeenDeliveries:
    """Delivery keys seen in the last ``ttl`` seconds (at most ``size`` of them)."""

    def __init__(
        self,
        *,
        ttl: float = 3600.0,
        size: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl, self._size, self._clock = ttl, size, clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` comes (within ``ttl``); remembers it either way."""
        now = self._clock()
        while self._seen and (
            len(self._seen) >= self._size or next(iter(self._seen.values())) <= now - self._ttl
        ):
            self._seen.popitem(last=False)
        seen = key in self._seen
        self._seen[key] = now
        self._seen.move_to_end(key)
        return not seen


def delivery_key(body: dict[str, Any]) -> str | None:
    """What identifies one delivery: the event's id, or the command's or click's trigger."""
    for name in ("event_id", "trigger_id"):
        value = body.get(name)
        if isinstance(value, str) and value:
            return f"{name}:{value}"
    return None


def _header(req: AsyncBoltRequest, name: str) -> str | None:
    values = req.headers.get(name)
    return values[0] if values else None


class SkipRedeliveries(AsyncMiddleware):
    """Global middleware (a class: bolt builds no keyword arguments for it on each request)."""

    def __init__(self, metrics: Metrics, seen: SeenDeliveries | None = None) -> None:
        self.metrics = metrics
        self.seen = seen or SeenDeliveries()

    @property
    def name(self) -> str:
        return "SkipRedeliveries"

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        key = delivery_key(req.body) if isinstance(req.body, dict) else None
        first = self.seen.first_time(key) if key is not None else True
        retry = _header(req, RETRY_NUM)
        if retry is not None:
            reason = _header(req, RETRY_REASON) or "unknown"
            if not first or reason in ARRIVED_REASONS:
                log.info("Slack redelivery #%s (%s) acknowledged, not run again", retry, reason)
                self.metrics.slack_requests.labels("redelivery_skipped").inc()
                return BoltResponse(status=200, body="")
            log.info(
                "Slack redelivery #%s (%s) of a request not seen before: running it", retry, reason
            )
        return await next()
