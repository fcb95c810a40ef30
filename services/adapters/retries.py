"""When a failed request to QuickBooks Online or the portal is sent again: one policy, on
tenacity's ``AsyncRetrying``, for both adapters.

- What is retried: a 429 (``ThrottledError``), a 5xx, a timeout or a dropped connection
  (``TransientError``). Nothing else: a refusal (4xx) or an answer of the wrong shape would
  only be refused again.
- A write (a request that changes something) is retried only when the other side cannot
  have acted on it: a 429, a 503, or a connection never made (``Unsent``). After any other
  failure it may have done the work, and doing it twice is worse than asking a person.
- How long to wait: what the other side asked for (``Retry-After``, in seconds or as an
  HTTP date), else exponential backoff with full jitter (``wait_random_exponential``: a
  random wait below ``backoff`` x 2^n); either way at most ``max_wait``. A longer
  ``Retry-After`` is cut to ``max_wait`` and the request tried again, never given up on.
- At most ``retries`` retries; then the last error is raised as it is.
- A wait after a 429 is told to whoever waits for the answer (``services.waits``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from services.adapters.hooks import RequestObserver, outcome_of
from services.errors import ThrottledError, TransientError, UpstreamError
from services.waits import Wait, tell_wait

T = TypeVar("T")
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


class Unsent(TransientError):
    """The request never reached the other side (no connection was made): safe to send
    again, even a write."""


def transport_error(exc: httpx.TransportError, *, system: str, what: str) -> TransientError:
    """The error an httpx failure stands for: ``Unsent`` when no connection was made."""
    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Unsent(f"{what}: no connection ({name})", system=system)
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"{what} timed out ({name})", system=system)
    return TransientError(f"{what}: the connection failed ({name})", system=system)


def may_retry(error: BaseException, *, write: bool) -> bool:
    """Whether a request that failed with ``error`` is worth sending again."""
    if isinstance(error, ThrottledError | Unsent):
        return True  # refused before anything was done, or never sent
    if isinstance(error, TransientError):
        return not write or error.status == 503
    return False


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


class wait_asked_or(wait_base):  # named as tenacity names its waits
    """The wait the other side asked for (``retry_after`` of the error), else ``otherwise``;
    at most ``cap`` seconds."""

    def __init__(self, otherwise: wait_base, *, cap: float, throttled: float | None) -> None:
        self.otherwise, self.cap, self.throttled = otherwise, cap, throttled

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        asked = error.retry_after if isinstance(error, ThrottledError | TransientError) else None
        if asked is None and isinstance(error, ThrottledError):
            asked = self.throttled
        wait = self.otherwise(retry_state) if asked is None else asked
        return max(0.0, min(wait, self.cap))


class Retrier:
    """Sends a request again as ``policy`` says, telling ``observer`` and the log each time."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        system: str,
        label: str,
        log: logging.Logger,
        observer: RequestObserver,
        request_id: str = "request_id",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.policy = policy
        self._system, self._label, self._log = system, label, log
        self._observer, self._request_id = observer, request_id
        self._sleep = sleep

    async def call(self, attempt: Callable[[], Awaitable[T]], *, what: str, write: bool) -> T:
        """``attempt()``'s answer, trying again as the policy says; ``what`` names the
        request in the log ("GET /invoices"); a ``write`` is retried only when the other
        side cannot have acted on it."""
        policy = self.policy
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(0, policy.retries) + 1),
            wait=wait_asked_or(
                wait_random_exponential(multiplier=policy.backoff, max=policy.max_wait),
                cap=policy.max_wait,
                throttled=policy.throttled_wait,
            ),
            retry=retry_if_exception(partial(may_retry, write=write)),
            before_sleep=partial(self._before_sleep, what),
            sleep=self._sleep,
            reraise=True,
        )
        answer: T = await retrying(attempt)
        return answer

    async def _before_sleep(self, what: str, retry_state: RetryCallState) -> None:
        outcome, wait = retry_state.outcome, retry_state.upcoming_sleep
        error = outcome.exception() if outcome is not None else None
        if not isinstance(error, UpstreamError):
            return
        self._observer.retry(self._label, outcome_of(error))
        self._log.warning(
            "%s %s: %s (status=%s code=%s %s=%s); retrying in %.2fs (retry %d/%d)",
            self._system, what, error.message, error.status, error.code, self._request_id,
            error.request_id, wait, retry_state.attempt_number, self.policy.retries,
        )  # fmt: skip
        if isinstance(error, ThrottledError):
            await tell_wait(Wait(system=self._system, seconds=wait))
