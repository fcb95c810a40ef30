"""When a failed HTTP request is sent again: the one policy, on tenacity's ``AsyncRetrying``,
of the bot's adapters (``services/adapters/retries.py``, QuickBooks Online and the portal)
and of the sandbox portal's QuickBooks client (``sandbox/portal/retries.py``, which posts
payments). It knows neither side's errors: each side says what a failure was
(``Failure``: the HTTP status, or none when no answer came; whether the request was never
sent; the ``Retry-After`` asked for), and the rules below do the rest.

- What is retried: a 429, a 5xx, a timeout or a dropped connection. Nothing else: a
  refusal (4xx) or an answer of the wrong shape would only be refused again.
- A write (a request that changes something) is retried only when the other side cannot
  have acted on it: a 429, a 503, or a request never sent (no connection was made). After
  any other failure it may have done the work, and doing it twice is worse than asking a
  person.
- How long to wait: what the other side asked for (``Retry-After``, in seconds or as an
  HTTP date), else after a 429 the policy's ``throttled_wait`` if it has one, else
  exponential backoff with full jitter (``wait_random_exponential``: a random wait below
  ``backoff`` x 2^n); either way at most ``max_wait``. A longer ``Retry-After`` is cut to
  ``max_wait`` and the request tried again, never given up on.
- At most ``retries`` retries; then the last error is raised as it is.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

_SECONDS = re.compile(r"\d+(\.\d+)?")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    """Retries after the first attempt."""
    backoff: float = 0.5
    """The first retry waits a random time below this; each next one, below twice as long."""
    max_wait: float = 60.0
    """The longest wait before a retry, a ``Retry-After`` included."""
    throttled_wait: float | None = None
    """The wait after a 429 without ``Retry-After`` (None: the backoff). QuickBooks counts
    its limit per minute: 60 s."""


@dataclass(frozen=True)
class Failure:
    """What a failed attempt was, as far as retrying goes."""

    status: int | None
    """The answer's HTTP status; None when no answer came (a timeout, a dropped connection,
    a request never sent)."""
    unsent: bool = False
    """The request never left: no connection was made."""
    retry_after: float | None = None
    """Seconds the other side asked us to wait (``Retry-After``), if it said."""


def may_retry(failure: Failure, *, write: bool) -> bool:
    """Whether a request that failed so is worth sending again."""
    if failure.unsent or failure.status == 429:
        return True  # refused before anything was done, or never sent
    if failure.status is None or failure.status >= 500:
        return not write or failure.status == 503
    return False


def never_sent(exc: httpx.TransportError) -> bool:
    """Whether an httpx failure means the request never left (no connection was made)."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header in seconds: delta-seconds or an HTTP date (a date in the
    past is 0); None when absent or garbled."""
    value = (value or "").strip()
    if not value:
        return None
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


FailureOf = Callable[[BaseException], Failure | None]
"""What an exception says of the failed attempt; None: not a failure to retry at all."""


def retrying(
    policy: RetryPolicy,
    *,
    failure_of: FailureOf,
    write: bool,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    before_sleep: Callable[[RetryCallState], Awaitable[None]] | None = None,
) -> AsyncRetrying:
    """tenacity's ``AsyncRetrying`` for one request, as the rules above say."""
    backoff = wait_random_exponential(multiplier=policy.backoff, max=policy.max_wait)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        failure = failure_of(error) if error is not None else None
        asked = failure.retry_after if failure is not None else None
        if asked is None and failure is not None and failure.status == 429:
            asked = policy.throttled_wait
        chosen = backoff(state) if asked is None else asked
        return max(0.0, min(chosen, policy.max_wait))

    def retry(error: BaseException) -> bool:
        failure = failure_of(error)
        return failure is not None and may_retry(failure, write=write)

    options: dict[str, Any] = {"before_sleep": before_sleep} if before_sleep else {}
    return AsyncRetrying(
        stop=stop_after_attempt(max(0, policy.retries) + 1),
        wait=wait,
        retry=retry_if_exception(retry),
        sleep=sleep,
        reraise=True,
        **options,
    )
