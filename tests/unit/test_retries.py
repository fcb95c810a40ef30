"""The one retry policy (retrypolicy), as the bot's adapters (services/adapters/retries.py)
and the sandbox portal's QuickBooks client (sandbox/portal/retries.py) use it: which
failures are retried, how long each wait is, and that a write is never sent twice when the
other side may have acted on it. The waits go to
an injected sleep that records them: nothing here waits on the clock."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from retrypolicy import Failure
from sandbox.portal import retries as portal_retries
from sandbox.portal.qbo_client import QboClient as PortalsQbo
from sandbox.portal.qbo_client import QboError
from sandbox.portal.records import QboConnection
from sandbox.portal.state import PortalState
from services.adapters.retries import (
    Retrier,
    RetryPolicy,
    Unsent,
    may_retry,
    retry_after,
    transport_error,
)
from services.errors import (
    NotFoundError,
    ThrottledError,
    TransientError,
    UpstreamError,
    ValidationFault,
)
from services.waits import Wait, waits_told_to

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LOG = logging.getLogger("tests.retries")


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Told:
    """A RequestObserver that keeps the retries it is told of."""

    def __init__(self) -> None:
        self.retries: list[tuple[str, str]] = []

    def request(self, system: str, outcome: str) -> None: ...

    def retry(self, system: str, reason: str) -> None:
        self.retries.append((system, reason))

    def secret(self, value: str) -> None: ...


def failing(*errors: Exception) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """An attempt that raises ``errors`` one after the other, then answers "done"; and the
    count of attempts made."""
    made = [0]

    async def attempt() -> str:
        made[0] += 1
        if made[0] <= len(errors):
            raise errors[made[0] - 1]
        return "done"

    return attempt, made


def retrier(sleeps: Sleeps, told: Told | None = None, **policy: Any) -> Retrier:
    return Retrier(
        RetryPolicy(**{"retries": 3, "backoff": 0.5, "max_wait": 60.0, **policy}),
        system="Test",
        label="test",
        log=LOG,
        observer=told or Told(),
        sleep=sleeps,
    )


def throttled(wait: float | None = None) -> ThrottledError:
    return ThrottledError("slow down", system="Test", status=429, retry_after=wait)


def server_error(status: int = 500, wait: float | None = None) -> TransientError:
    return TransientError("broke", system="Test", status=status, retry_after=wait)


# -- Retry-After, seconds or an HTTP date, the same on both sides --------------------------
@pytest.mark.parametrize("parse", [retry_after, portal_retries.retry_after], ids=["bot", "sandbox"])
def test_retry_after_as_seconds_or_an_http_date(
    parse: Callable[[str | None, datetime | None], float | None],
) -> None:
    later = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    earlier = format_datetime(NOW - timedelta(seconds=30), usegmt=True)
    assert parse("5", NOW) == 5.0
    assert parse(" 120 ", NOW) == 120.0
    assert parse(later, NOW) == 30.0
    assert parse(earlier, NOW) == 0.0  # already past: no wait
    assert parse("soon", NOW) is None
    assert parse("", NOW) is None and parse(None, NOW) is None


async def test_the_wait_asked_for_is_honoured_in_seconds() -> None:
    sleeps, told = Sleeps(), Told()
    attempt, made = failing(throttled(7.0), server_error(503, wait=2.0))
    assert await retrier(sleeps, told).call(attempt, what="GET /x", write=False) == "done"
    assert sleeps.waits == [7.0, 2.0] and made == [3]
    assert told.retries == [("test", "throttled"), ("test", "transient")]


async def test_a_throttled_wait_is_told_to_the_listener_of_the_work_and_nothing_else() -> None:
    sleeps, waits = Sleeps(), []

    async def listener(wait: Wait) -> None:
        waits.append(wait)

    attempt, _ = failing(throttled(7.0), server_error(503, wait=2.0), throttled(1.0))
    with waits_told_to(listener):
        await retrier(sleeps).call(attempt, what="GET /x", write=False)
    assert waits == [Wait("Test", 7.0), Wait("Test", 1.0)]  # the 503 is not a throttle
    attempt, _ = failing(throttled(7.0))
    await retrier(sleeps).call(attempt, what="GET /x", write=False)  # no listener: silent
    assert len(waits) == 2


async def test_a_wait_given_as_an_http_date_is_honoured() -> None:
    sleeps = Sleeps()
    header = format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
    attempt, made = failing(throttled(retry_after(header)))
    await retrier(sleeps).call(attempt, what="GET /x", write=False)
    assert made == [2] and len(sleeps.waits) == 1 and 38.0 <= sleeps.waits[0] <= 40.0


async def test_a_longer_wait_is_capped_and_the_request_tried_again_not_given_up() -> None:
    sleeps = Sleeps()
    attempt, made = failing(throttled(3600.0), throttled(120.0))
    assert await retrier(sleeps, max_wait=10.0).call(attempt, what="GET /x", write=False)
    assert sleeps.waits == [10.0, 10.0] and made == [3]


async def test_a_429_without_retry_after_waits_the_throttled_wait_capped() -> None:
    sleeps = Sleeps()
    attempt, _ = failing(throttled(), throttled())
    await retrier(sleeps, throttled_wait=60.0, max_wait=5.0).call(attempt, what="q", write=False)
    assert sleeps.waits == [5.0, 5.0]


async def test_backoff_is_exponential_with_full_jitter_from_a_fixed_seed() -> None:
    sleeps, seed = Sleeps(), 20261128
    attempt, made = failing(*(server_error() for _ in range(6)))
    random.seed(seed)
    with pytest.raises(TransientError):
        await retrier(sleeps, retries=5, backoff=0.5, max_wait=4.0).call(
            attempt, what="GET /x", write=False
        )
    replay = random.Random(seed)
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0]  # doubling from the backoff, cut at max_wait
    assert sleeps.waits == [replay.uniform(0, ceiling) for ceiling in ceilings]
    assert made == [6]  # the first try and five retries
    assert len(set(sleeps.waits)) == 5  # jittered: no two alike


async def test_retries_are_bounded_and_the_last_error_raised_as_it_is() -> None:
    sleeps, told = Sleeps(), Told()
    last = server_error(502)
    attempt, made = failing(server_error(), server_error(), last)
    with pytest.raises(TransientError) as caught:
        await retrier(sleeps, told, retries=2).call(attempt, what="GET /x", write=False)
    assert caught.value is last and made == [3] and len(sleeps.waits) == 2
    assert len(told.retries) == 2


@pytest.mark.parametrize(
    "error",
    [
        ValidationFault("no", system="Test", status=422),
        NotFoundError("gone", system="Test", status=404),
        UpstreamError("odd", system="Test", status=200),
        RuntimeError("a bug"),
    ],
)
async def test_refusals_and_bugs_are_not_retried(error: Exception) -> None:
    sleeps = Sleeps()
    attempt, made = failing(error)
    with pytest.raises(type(error)):
        await retrier(sleeps).call(attempt, what="GET /x", write=False)
    assert made == [1] and sleeps.waits == []


# -- writes: sent again only when the other side cannot have acted ------------------------
def refused_connection() -> httpx.ConnectError:
    return httpx.ConnectError("refused")


@pytest.mark.parametrize(
    "error",
    [
        server_error(500),
        server_error(502),
        server_error(504),
        transport_error(httpx.ReadTimeout("slow"), system="Test", what="POST /x"),
        transport_error(httpx.RemoteProtocolError("dropped"), system="Test", what="POST /x"),
    ],
    ids=["500", "502", "504", "read timeout", "dropped"],
)
async def test_a_write_the_other_side_may_have_acted_on_is_not_sent_again(
    error: TransientError,
) -> None:
    sleeps = Sleeps()
    attempt, made = failing(error)
    with pytest.raises(TransientError):
        await retrier(sleeps).call(attempt, what="POST /x", write=True)
    assert made == [1] and sleeps.waits == []
    # The same failure on a read is retried.
    attempt, made = failing(error)
    assert await retrier(sleeps).call(attempt, what="GET /x", write=False) == "done"
    assert made == [2]


@pytest.mark.parametrize(
    "error",
    [
        throttled(0.0),
        server_error(503, wait=0.0),
        transport_error(refused_connection(), system="Test", what="POST /x"),
        transport_error(httpx.ConnectTimeout("no"), system="Test", what="POST /x"),
        transport_error(httpx.PoolTimeout("no"), system="Test", what="POST /x"),
    ],
    ids=["429", "503", "refused", "connect timeout", "pool timeout"],
)
async def test_a_write_the_other_side_cannot_have_acted_on_is_sent_again(
    error: UpstreamError,
) -> None:
    attempt, made = failing(error)
    assert await retrier(Sleeps()).call(attempt, what="POST /x", write=True) == "done"
    assert made == [2]


def test_which_transport_failures_mean_never_sent() -> None:
    unsent = transport_error(refused_connection(), system="Test", what="GET /x")
    assert isinstance(unsent, Unsent) and isinstance(unsent, TransientError)
    sent = transport_error(httpx.ReadTimeout("slow"), system="Test", what="GET /x")
    assert type(sent) is TransientError and "timed out" in sent.message
    assert may_retry(unsent, write=True) and not may_retry(sent, write=True)
    assert may_retry(sent, write=False)


async def test_each_retry_is_logged_with_its_wait_and_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOG.name)
    attempt, _ = failing(throttled(1.5))
    await retrier(Sleeps()).call(attempt, what="GET /invoices", write=False)
    [record] = [r for r in caplog.records if r.name == LOG.name]
    assert "Test GET /invoices: slow down" in record.getMessage()
    assert "retrying in 1.50s (retry 1/3)" in record.getMessage()


# -- the sandbox portal's poster to QuickBooks: the same rules ------------------------------
@pytest.mark.parametrize(
    ("status", "write", "retried"),
    [(500, True, False), (500, False, True), (503, True, True), (429, True, True)],
)
def test_the_sandbox_judges_answers_as_the_bot_does(
    status: int, write: bool, retried: bool
) -> None:
    """One policy (``retrypolicy``); each side reads its own failures into it alike."""
    answer = httpx.Response(status)
    sandbox_side = portal_retries.failed_answer(answer, f"HTTP {status}")
    assert sandbox_side is not None
    assert portal_retries.may_retry(sandbox_side, write=write) is retried
    bot_side = ThrottledError("slow down", system="Test") if status == 429 else server_error(status)
    assert may_retry(bot_side, write=write) is retried


class FakeQbo:
    """QuickBooks for the sandbox portal's client: answers ``plan`` in turn, then 200."""

    def __init__(self, *plan: httpx.Response | Exception) -> None:
        self.plan = list(plan)
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/bearer"):
            return httpx.Response(200, json={"access_token": "a", "refresh_token": "r"})
        self.calls.append(request.method)
        if self.plan:
            step = self.plan.pop(0)
            if isinstance(step, Exception):
                raise step
            return step
        return httpx.Response(200, json={"Payment": {"Id": "9"}, "Invoice": {"Id": "1"}})


def portal_with(qbo: FakeQbo) -> PortalState:
    connection = QboConnection(
        base_url="http://qbo.test",
        token_url="http://qbo.test/oauth2/v1/tokens/bearer",
        realm_id="1",
        client_id="c",
        client_secret="s",
        refresh_token="r",
    )
    return PortalState(
        api_key="k", qbo=connection, integrations={}, qbo_transport=httpx.MockTransport(qbo)
    )


NOW_HEADER = {"Retry-After": "0"}


@pytest.mark.parametrize(
    ("first", "posts"),
    [
        (httpx.Response(500, headers=NOW_HEADER), 1),
        (httpx.Response(502, headers=NOW_HEADER), 1),
        (httpx.ReadTimeout("slow"), 1),
        (httpx.Response(503, headers=NOW_HEADER), 2),
        (httpx.Response(429, headers=NOW_HEADER), 2),
        (httpx.ConnectError("refused"), 2),
    ],
    ids=["500", "502", "read timeout", "503", "429", "refused"],
)
async def test_the_sandbox_posts_a_payment_again_only_when_qbo_cannot_have_acted(
    first: httpx.Response | Exception, posts: int
) -> None:
    qbo = FakeQbo(first)
    async with PortalsQbo(portal_with(qbo)) as client:
        if posts == 1:
            with pytest.raises(QboError) as caught:
                await client.post_payment({"TotalAmt": "1.00"})
            status = first.status_code if isinstance(first, httpx.Response) else None
            assert caught.value.status == status  # the portal tells 5xx from a refusal by it
        else:
            assert (await client.post_payment({"TotalAmt": "1.00"}))["Id"] == "9"
    assert qbo.calls == ["POST"] * posts


async def test_the_sandbox_reads_again_after_a_server_error_or_a_timeout() -> None:
    qbo = FakeQbo(httpx.Response(500, headers=NOW_HEADER), httpx.ReadTimeout("slow"))
    async with PortalsQbo(portal_with(qbo)) as client:
        assert (await client.get_invoice("1"))["Id"] == "1"
    assert qbo.calls == ["GET"] * 3


async def test_the_sandbox_caps_a_long_retry_after_and_tries_again() -> None:
    sleeps = Sleeps()
    attempt_errors = [portal_retries.Retryable("429", Failure(429, retry_after=600.0))]
    attempt, made = failing(*attempt_errors)
    assert await portal_retries.call(attempt, write=True, sleep=sleeps) == "done"
    assert sleeps.waits == [portal_retries.MAX_WAIT] and made == [2]
