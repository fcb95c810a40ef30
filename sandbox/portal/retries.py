"""When the fake portal sends a failed request to QuickBooks Online again: the same rules as
the bot's adapters (``services/adapters/retries.py``; the sandbox may not import them), on
tenacity's ``AsyncRetrying``.

- A read is retried after a 429, a 5xx, a timeout or a dropped connection; a write (posting
  a payment) only when QuickBooks cannot have acted on it: a 429, a 503, or a connection
  never made.
- The wait is what QuickBooks asked for (``Retry-After``: seconds or an HTTP date), else
  exponential backoff with full jitter; either way at most ``MAX_WAIT`` (a longer
  ``Retry-After`` is cut to it, and the request tried again).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

T = TypeVar("T")
RETRIES = 2
BACKOFF = 0.1
MAX_WAIT = 5.0
_SECONDS = re.compile(r"\d+(\.\d+)?")
_BACKOFF = wait_random_exponential(multiplier=BACKOFF, max=MAX_WAIT)


class Retryable(Exception):
    """A failed attempt worth trying again; ``never_acted``: QuickBooks cannot have done
    anything (then even a write may be sent again)."""

    def __init__(
        self, message: str, *, never_acted: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message, self.never_acted, self.retry_after = message, never_acted, retry_after


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date; None when absent or garbled."""
    value = (value or "").strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def failed_answer(response: httpx.Response, message: str) -> Retryable | None:
    """The retryable failure an answer is (429 or 5xx), None for any other answer."""
    status = response.status_code
    if status != 429 and status < 500:
        return None
    wait = retry_after(response.headers.get("Retry-After"))
    return Retryable(message, never_acted=status in (429, 503), retry_after=wait)


def failed_transport(exc: httpx.TransportError) -> Retryable:
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return Retryable(f"no answer ({type(exc).__name__})", never_acted=never_sent)


def may_retry(error: BaseException, *, write: bool) -> bool:
    return isinstance(error, Retryable) and (error.never_acted or not write)


def wait(retry_state: RetryCallState) -> float:
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None else None
    asked = error.retry_after if isinstance(error, Retryable) else None
    return min(MAX_WAIT, _BACKOFF(retry_state) if asked is None else asked)


async def call(
    attempt: Callable[[], Awaitable[T]],
    *,
    write: bool,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``attempt()``'s answer, tried again as the rules above say; the last failure raised."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(RETRIES + 1),
        wait=wait,
        retry=retry_if_exception(lambda error: may_retry(error, write=write)),
        reraise=True,
        sleep=sleep,
    )
    answer: T = await retrying(attempt)
    return answer
