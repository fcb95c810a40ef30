"""When a failed request to QuickBooks Online or the portal is sent again: the one policy of
``retrypolicy`` (which the sandbox portal's QuickBooks client follows too), for both
adapters, with their errors: a ``ThrottledError`` is a 429, a ``TransientError`` a 5xx or no
answer, an ``Unsent`` a request that never left; any other error is not retried. A wait
after a 429 is told to whoever waits for the answer (``services.waits``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import httpx
from tenacity import RetryCallState

from retrypolicy import Failure, RetryPolicy, never_sent, retry_after, retrying
from retrypolicy import may_retry as may_retry_failure
from services.adapters.hooks import RequestObserver, outcome_of
from services.errors import ThrottledError, TransientError, UpstreamError
from services.waits import Wait, tell_wait

__all__ = ["Retrier", "RetryPolicy", "Unsent", "may_retry", "retry_after", "transport_error"]

T = TypeVar("T")


class Unsent(TransientError):
    """The request never reached the other side (no connection was made): safe to send
    again, even a write."""


def transport_error(exc: httpx.TransportError, *, system: str, what: str) -> TransientError:
    """The error an httpx failure stands for: ``Unsent`` when no connection was made."""
    name = type(exc).__name__
    if never_sent(exc):
        return Unsent(f"{what}: no connection ({name})", system=system)
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"{what} timed out ({name})", system=system)
    return TransientError(f"{what}: the connection failed ({name})", system=system)


def failure_of(error: BaseException) -> Failure | None:
    """What an adapter's error says of the failed attempt (None: not one to retry)."""
    if isinstance(error, ThrottledError):
        return Failure(429, retry_after=error.retry_after)
    if isinstance(error, Unsent):
        return Failure(None, unsent=True)
    if isinstance(error, TransientError):
        status = error.status if error.status is not None and error.status >= 500 else None
        return Failure(status, retry_after=error.retry_after)
    return None


def may_retry(error: BaseException, *, write: bool) -> bool:
    """Whether a request that failed with ``error`` is worth sending again."""
    failure = failure_of(error)
    return failure is not None and may_retry_failure(failure, write=write)


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
        retry = retrying(
            self.policy,
            failure_of=failure_of,
            write=write,
            sleep=self._sleep,
            before_sleep=partial(self._before_sleep, what),
        )
        answer: T = await retry(attempt)
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
