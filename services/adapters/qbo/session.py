"""Requests to QuickBooks Online (Accounting API v3) for one company (realm): within
Intuit's limits (10 in flight and 500 a minute per company), refreshing OAuth2 tokens as
needed and retrying what is worth it (``services.adapters.retries``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import parse_qsl

import httpx
from pydantic import SecretStr

from services.adapters.hooks import OK, EventHooks, NoObserver, RequestObserver, outcome_of
from services.adapters.http import send
from services.adapters.limits import RateLimiter
from services.adapters.qbo.answers import Read, answer, endpoint
from services.adapters.qbo.auth import QboAuth
from services.adapters.qbo.faults import SYSTEM
from services.adapters.retries import Retrier, RetryPolicy, transport_error
from services.errors import AuthenticationError, NotFoundError, ReconnectRequired, UpstreamError
from services.ports import TokenStore

log = logging.getLogger("services.adapters.qbo")
R = TypeVar("R")

THROTTLE_WAIT = 60.0
"""Wait after a 429 without Retry-After (Intuit's window is a minute)."""


class QboSession:
    """The HTTP client of one company, its limiter, tokens and retries; ``QboClient`` adds
    the API's operations. Close it with ``aclose``."""

    def __init__(
        self,
        *,
        base_url: str,
        token_url: str,
        realm_id: str,
        client_id: str,
        client_secret: SecretStr,
        token_store: TokenStore,
        transport: httpx.AsyncBaseTransport | None,
        event_hooks: EventHooks | None,
        timeout: float,
        minor_version: int,
        max_concurrency: int,
        max_per_minute: int,
        max_retries: int,
        retry_backoff: float,
        max_retry_wait: float,
        limiter: RateLimiter | None,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]],
        observer: RequestObserver | None,
    ) -> None:
        self._realm_id = realm_id
        self._observer = observer or NoObserver()
        self._minor_version = str(minor_version)
        policy = RetryPolicy(
            retries=max_retries,
            backoff=retry_backoff,
            max_wait=max_retry_wait,
            throttled_wait=THROTTLE_WAIT,
        )
        self.retrier = Retrier(
            policy,
            system=SYSTEM,
            label="qbo",
            log=log,
            observer=self._observer,
            request_id="intuit_tid",
            sleep=sleep,
        )
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            event_hooks=event_hooks,
            timeout=timeout,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "invoice-resync-bot"},
        )
        self.limiter = limiter or RateLimiter(
            max_concurrency=max_concurrency, max_per_window=max_per_minute
        )
        self.auth = QboAuth(
            http=self._http,
            token_url=token_url,
            client_id=client_id,
            client_secret=client_secret,
            store=token_store,
            clock=clock,
            observer=self._observer,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        read: Read[R],
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> R:
        """What ``read`` makes of the answer, retried as ``retrier`` says (reads, and writes
        sent with a ``requestid``: the same id never writes twice)."""
        extra = {"minorversion": self._minor_version, **(params or {})}
        attempt = partial(self._attempt, method, path, read, content, headers or {}, extra)
        try:
            return await self.retrier.call(attempt, what=f"{method} {endpoint(path)}", write=False)
        except ReconnectRequired:
            raise  # logged once where it was learnt (QboAuth), not once per request
        except UpstreamError as exc:
            _log_failure(method, path, exc)
            raise

    async def _attempt(
        self,
        method: str,
        path: str,
        read: Read[R],
        content: bytes | None,
        headers: Mapping[str, str],
        params: Mapping[str, str],
    ) -> R:
        """One attempt; an access token the API refuses is refreshed, and the request sent
        once more with the new one."""
        token = await self.auth.access_token()
        try:
            return await self._send(method, path, read, content, headers, params, token)
        except AuthenticationError as exc:
            self._observer.retry("qbo", outcome_of(exc))
            log.info(
                "QuickBooks Online refused the access token (intuit_tid=%s): refreshing",
                exc.request_id,
            )
            token = await self.auth.refresh(rejected=token)
            return await self._send(method, path, read, content, headers, params, token)

    async def _send(
        self,
        method: str,
        path: str,
        read: Read[R],
        content: bytes | None,
        headers: Mapping[str, str],
        params: Mapping[str, str],
        token: str,
    ) -> R:
        path, _, query = path.partition("?")  # a path may carry its own query (CDC)
        try:
            async with self.limiter.slot():
                response, body = await send(
                    self._http,
                    method,
                    f"/v3/company/{self._realm_id}{path}",
                    params={**dict(parse_qsl(query)), **params},
                    content=content,
                    headers={**headers, "Authorization": f"Bearer {token}"},
                )
            value = answer(response, body, read)
        except httpx.TransportError as exc:
            error = transport_error(exc, system=SYSTEM, what=f"{method} {endpoint(path)}")
            self._observer.request("qbo", outcome_of(error))
            raise error from None
        except UpstreamError as exc:
            self._observer.request("qbo", outcome_of(exc))
            raise
        self._observer.request("qbo", OK)
        return value


def _log_failure(method: str, path: str, error: UpstreamError) -> None:
    level = logging.WARNING if isinstance(error, NotFoundError) else logging.ERROR
    log.log(
        level,
        "QuickBooks Online %s %s failed: %s (status=%s code=%s intuit_tid=%s)",
        method,
        endpoint(path),
        error.message,
        error.status,
        error.code,
        error.request_id,
    )
