"""When the fake portal sends a failed request to QuickBooks Online again: the one policy of
``retrypolicy``, the bot's adapters' own (a read is retried after a 429, a 5xx, a timeout or
a dropped connection; a write, posting a payment, only when QuickBooks cannot have acted on
it: a 429, a 503, or a connection never made; the wait is what QuickBooks asked for, else
backoff with jitter, at most ``MAX_WAIT``). Fewer and shorter retries than the bot's: the
portal's payment run tries again on its next round anyway."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from retrypolicy import Failure, RetryPolicy, never_sent, retry_after, retrying
from retrypolicy import may_retry as may_retry_failure

__all__ = ["MAX_WAIT", "Retryable", "call", "failed_answer", "failed_transport", "retry_after"]

T = TypeVar("T")
POLICY = RetryPolicy(retries=2, backoff=0.1, max_wait=5.0)
MAX_WAIT = POLICY.max_wait


class Retryable(Exception):
    """A failed attempt, and what it was (``failure``) for the policy to judge."""

    def __init__(self, message: str, failure: Failure) -> None:
        super().__init__(message)
        self.message, self.failure = message, failure


def failed_answer(response: httpx.Response, message: str) -> Retryable | None:
    """The retryable failure an answer is (429 or 5xx), None for any other answer."""
    status = response.status_code
    if status != 429 and status < 500:
        return None
    wait = retry_after(response.headers.get("Retry-After"))
    return Retryable(message, Failure(status, retry_after=wait))


def failed_transport(exc: httpx.TransportError) -> Retryable:
    return Retryable(f"no answer ({type(exc).__name__})", Failure(None, unsent=never_sent(exc)))


def _failure_of(error: BaseException) -> Failure | None:
    return error.failure if isinstance(error, Retryable) else None


def may_retry(error: BaseException, *, write: bool) -> bool:
    failure = _failure_of(error)
    return failure is not None and may_retry_failure(failure, write=write)


async def call(
    attempt: Callable[[], Awaitable[T]],
    *,
    write: bool,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``attempt()``'s answer, tried again as the policy says; the last failure raised."""
    retry = retrying(POLICY, failure_of=_failure_of, write=write, sleep=sleep)
    answer: T = await retry(attempt)
    return answer
