"""Requests to the Portal REST API (``docs/portal-api.yaml``) over httpx, and the typed
error each failed answer stands for.

Failed requests are sent again as ``services.adapters.retries`` says: reads after a 429, a
5xx, a timeout or a dropped connection; writes (start a sync, resync a record) only when
the portal cannot have acted on them (429, 503, or a connection never made). The API key
travels in ``X-API-Key`` and is never logged or put in an error message.
"""

from __future__ import annotations

import json as jsonlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from services.adapters.hooks import OK, EventHooks, NoObserver, RequestObserver, outcome_of
from services.adapters.http import send
from services.adapters.portal.errors import SyncAlreadyRunning
from services.adapters.portal.wire import SYSTEM, context, error_field, error_message
from services.adapters.retries import Retrier, RetryPolicy, retry_after, transport_error
from services.errors import (
    AuthenticationError,
    NotFoundError,
    ThrottledError,
    TransientError,
    UpstreamError,
    ValidationFault,
)

logger = logging.getLogger("services.adapters.portal")

API_PREFIX = "/api/v1"
T = TypeVar("T")


def segment(value: str) -> str:
    """One path segment, percent-encoded (invoice numbers may hold ``?``, ``#``, ``%``)."""
    return quote(value, safe="")


def idempotent(key: str | None) -> dict[str, str] | None:
    """The ``Idempotency-Key`` header of a write, when the caller has a key."""
    return None if key is None else {"Idempotency-Key": key}


def read_json(response: httpx.Response, body: bytes) -> Any:
    try:
        return jsonlib.loads(body)
    except ValueError:
        method, path = response.request.method, response.request.url.path
        raise UpstreamError(
            f"{method} {path} answered with invalid JSON", **context(response)
        ) from None


class PortalSession:
    """The portal's HTTP client, its retries and its error mapping; ``PortalClient`` adds
    the API's operations.

    ``base_url`` is the portal's address; ``/api/v1`` is appended unless already there.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr,
        transport: httpx.AsyncBaseTransport | None,
        event_hooks: EventHooks | None,
        timeout: float,
        max_retries: int,
        backoff: float,
        max_retry_wait: float,
        sleep: Callable[[float], Awaitable[None]],
        observer: RequestObserver | None,
    ) -> None:
        self._observer = observer or NoObserver()
        root = base_url.rstrip("/")
        if not root.endswith(API_PREFIX):
            root += API_PREFIX
        self._http = httpx.AsyncClient(
            base_url=root,
            transport=transport,
            event_hooks=event_hooks,
            timeout=timeout,
            headers={"X-API-Key": api_key.get_secret_value(), "Accept": "application/json"},
            follow_redirects=False,
        )
        self.retrier = Retrier(
            RetryPolicy(retries=max_retries, backoff=backoff, max_wait=max_retry_wait),
            system=SYSTEM,
            label=SYSTEM,
            log=logger,
            observer=self._observer,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self._http.base_url)!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        json: dict[str, Any] | None = None,
        read_only: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The JSON of a 2xx answer; any other answer raised as a typed error."""
        return await self._request(
            method,
            path,
            params=params,
            json=json,
            read_only=read_only,
            read=read_json,
            headers=headers,
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        read: Callable[[httpx.Response, bytes], T],
        params: dict[str, str | int] | None = None,
        json: dict[str, Any] | None = None,
        read_only: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> T:
        """What ``read`` makes of a 2xx answer; any other answer raised as a typed error.
        ``read_only`` (default: GET) requests are retried whatever went wrong; others only
        when the portal cannot have acted on them."""
        write = not (method == "GET" if read_only is None else read_only)
        attempt = partial(self._attempt, method, path, params, json, read, headers)
        try:
            return await self.retrier.call(attempt, what=f"{method} {path}", write=write)
        except (ThrottledError, TransientError) as exc:
            logger.warning("portal %s %s failed: %s", method, path, exc)
            raise

    async def _attempt(
        self,
        method: str,
        path: str,
        params: dict[str, str | int] | None,
        json: dict[str, Any] | None,
        read: Callable[[httpx.Response, bytes], T],
        headers: dict[str, str] | None = None,
    ) -> T:
        try:
            try:
                response, body = await send(
                    self._http, method, path, params=params, json=json, headers=headers
                )
            except httpx.TransportError as exc:
                raise transport_error(exc, system=SYSTEM, what=f"{method} {path}") from None
            raise_for_status(response, method, path)
            answer = read(response, body)
        except UpstreamError as exc:
            self._observer.request(SYSTEM, outcome_of(exc))
            raise
        self._observer.request(SYSTEM, OK)
        return answer


def raise_for_status(response: httpx.Response, method: str, path: str) -> None:
    """The typed error a non-2xx answer stands for."""
    status = response.status_code
    if status < 300:
        return
    message = error_message(response, method, path)
    details = context(response)
    wait = retry_after(response.headers.get("Retry-After"))
    if status == 429:
        raise ThrottledError(f"{method} {path} was rate limited", retry_after=wait, **details)
    if status >= 500:
        raise TransientError(message, retry_after=wait, **details)
    if status in (401, 403):
        raise AuthenticationError(
            "The portal refused the API key (check PORTAL_API_KEY).", **details
        )
    if status == 404:
        raise NotFoundError(message, **details)
    if status == 409 and details.get("code") == "sync_already_running":
        run_id = error_field(response, "run_id")
        if run_id:
            raise SyncAlreadyRunning(message, run_id=run_id, request_id=details["request_id"])
    if status in (400, 422):
        raise ValidationFault(message, **details)
    raise UpstreamError(message, **details)
