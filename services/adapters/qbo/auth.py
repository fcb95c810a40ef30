"""OAuth2 for QuickBooks Online: refresh on expiry, rotated refresh token saved first,
one refresher at a time. Tokens and the client secret never reach a log or an error.

A refresh token that Intuit refuses (``invalid_grant``: revoked, or unused for 100 days) is
marked dead in the token store (its expiry set in the past). From then on every process
fails fast with ``ReconnectRequired``, without asking Intuit again, until the store holds
another refresh token (an admin reconnected).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from services.adapters.hooks import NoObserver, RequestObserver, outcome_of
from services.adapters.qbo.faults import SYSTEM, parse_json
from services.adapters.retries import Unsent, transport_error
from services.errors import (
    AuthenticationError,
    ReconnectRequired,
    ThrottledError,
    TransientError,
    UpstreamError,
)
from services.models import TokenSet
from services.ports import TokenStore

log = logging.getLogger("services.adapters.qbo")

LEEWAY = timedelta(seconds=60)
"""Refresh an access token that expires within this long."""
DEAD = datetime(1970, 1, 1, tzinfo=UTC)
"""The expiry stored for a refresh token that Intuit refused."""
RECONNECT = (
    "the connection was revoked or has expired (Intuit refused the refresh token: "
    "invalid_grant); an admin must reconnect QuickBooks Online and set a new QBO_REFRESH_TOKEN"
)


def is_dead(tokens: TokenSet | None, now: datetime) -> bool:
    """No usable refresh token: nothing stored, or one known to be refused or expired."""
    if tokens is None or not tokens.refresh_token:
        return True
    expires = tokens.refresh_token_expires_at
    return expires is not None and expires <= now


def needs_seed(stored: TokenSet | None, seed: str | None, now: datetime) -> bool:
    """Whether the configured first refresh token should replace what the store holds:
    when nothing is stored, or when the stored token is dead and the seed is another one
    (an admin reconnected and configured the new token)."""
    if not seed:
        return False
    if stored is None:
        return True
    return is_dead(stored, now) and stored.refresh_token != seed


class QboAuth:
    """Hands out a valid access token, refreshing it through the token endpoint when due."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        store: TokenStore,
        clock: Callable[[], datetime],
        observer: RequestObserver | None = None,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._store = store
        self._clock = clock
        self._observer = observer or NoObserver()
        self._cached: TokenSet | None = None
        self.refreshes = 0
        """Refreshes this client performed (tests count them)."""

    def _fresh(self, tokens: TokenSet | None) -> bool:
        return (
            tokens is not None
            and bool(tokens.access_token)
            and tokens.access_token_expires_at - LEEWAY > self._clock()
        )

    async def access_token(self) -> str:
        """A usable access token: the cached one, the stored one, or a refreshed one."""
        if self._cached is None or not self._fresh(self._cached):
            self._cached = await self._store.load()
            self._tell_secrets(self._cached)
        if self._cached is not None and self._fresh(self._cached):
            return self._cached.access_token
        if self._cached is not None and is_dead(self._cached, self._clock()):
            raise _reconnect()  # known dead: do not ask Intuit again
        stale = self._cached.access_token if self._cached is not None else None
        return await self.refresh(rejected=stale)

    async def refresh(self, *, rejected: str | None) -> str:
        """Refresh unless another refresher already replaced ``rejected`` meanwhile.

        Shielded: a caller cancelled mid-refresh must not lose the rotated refresh token
        that Intuit has already issued, so the refresh and the save always finish."""
        task = asyncio.ensure_future(self._refresh(rejected))
        task.add_done_callback(_consume_exception)
        return await asyncio.shield(task)

    async def _refresh(self, rejected: str | None) -> str:
        async with self._store.refresh_lock():
            current = await self._store.load()
            self._tell_secrets(current)
            if current is None:
                raise ReconnectRequired(
                    "no QuickBooks Online connection is stored: connect the app first",
                    system=SYSTEM,
                )
            if current.access_token != rejected and self._fresh(current):
                self._cached = current
                return current.access_token
            if is_dead(current, self._clock()):
                self._cached = current
                raise _reconnect()
            try:
                tokens = await self._grant(current.refresh_token)
            except ReconnectRequired:
                await self._mark_dead(current)
                raise
            # The old refresh token may be dead already: keep the new one before anything else.
            await self._store.save(tokens)
            self._cached = tokens
            self.refreshes += 1
            log.info("QuickBooks Online access token refreshed")
            return tokens.access_token

    async def _mark_dead(self, current: TokenSet) -> None:
        """Remember, for every process, that this refresh token is refused. Logged once."""
        dead = TokenSet(
            access_token="",
            access_token_expires_at=DEAD,
            refresh_token=current.refresh_token,
            refresh_token_expires_at=DEAD,
        )
        await self._store.save(dead)
        self._cached = dead
        log.error("QuickBooks Online connection lost: %s", RECONNECT)

    async def _grant(self, refresh_token: str) -> TokenSet:
        try:
            tokens = await self._post_grant(refresh_token)
        except UpstreamError as exc:
            self._observer.request("qbo_token", outcome_of(exc))
            raise
        self._tell_secrets(tokens)  # before they are saved (and perhaps logged by a driver)
        self._observer.request("qbo_token", outcome_of(None))
        return tokens

    def _tell_secrets(self, tokens: TokenSet | None) -> None:
        if tokens is not None:
            for value in (tokens.access_token, tokens.refresh_token):
                if value:
                    self._observer.secret(value)

    async def _post_grant(self, refresh_token: str) -> TokenSet:
        try:
            response = await self._http.post(
                self._token_url,
                data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                auth=httpx.BasicAuth(self._client_id, self._client_secret.get_secret_value()),
                headers={"Accept": "application/json"},
            )
        except httpx.TransportError as exc:
            failed = transport_error(exc, system=SYSTEM, what="token refresh")
            if isinstance(failed, Unsent):
                raise failed from None  # never reached Intuit: safe to ask again
            raise _may_have_rotated(type(exc).__name__) from None
        request_id = response.headers.get("intuit_tid")
        body = _json_or_empty(response)
        if response.status_code == 200 and isinstance(body.get("access_token"), str):
            return self._tokens_from(body, refresh_token)
        error = str(body.get("error") or f"HTTP {response.status_code}")
        common: dict[str, Any] = {
            "system": SYSTEM,
            "status": response.status_code,
            "code": error,
            "request_id": request_id,
        }
        if error == "invalid_grant":
            raise ReconnectRequired(RECONNECT, **common)
        if response.status_code == 429:
            raise ThrottledError("token endpoint busy", **common)
        if response.status_code == 503:  # refused before acting: safe to ask again
            raise TransientError("token endpoint unavailable", **common)
        if response.status_code >= 500:
            raise _may_have_rotated(f"HTTP {response.status_code}", **common)
        if error == "invalid_client" or response.status_code == 401:
            raise AuthenticationError("client id or secret refused by the token endpoint", **common)
        raise UpstreamError(f"token refresh failed: {error}", **common)

    def _tokens_from(self, body: dict[str, Any], old_refresh: str) -> TokenSet:
        now = self._clock()
        refresh_ttl = body.get("x_refresh_token_expires_in")
        return TokenSet(
            access_token=body["access_token"],
            access_token_expires_at=now + timedelta(seconds=int(body.get("expires_in", 3600))),
            refresh_token=str(body.get("refresh_token") or old_refresh),
            refresh_token_expires_at=(
                now + timedelta(seconds=int(refresh_ttl)) if refresh_ttl is not None else None
            ),
        )


def _may_have_rotated(why: str, **common: Any) -> UpstreamError:
    """A refresh that failed once Intuit had it: it may have rotated the refresh token, and
    the same grant sent again could break the chain. Not retried (``retries``: a write);
    the next request refreshes afresh from the store."""
    common.setdefault("system", SYSTEM)
    return UpstreamError(f"the token refresh failed after reaching Intuit ({why})", **common)


def _reconnect() -> ReconnectRequired:
    return ReconnectRequired(RECONNECT, system=SYSTEM, code="invalid_grant")


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = parse_json(response.text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _consume_exception(task: asyncio.Future[str]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved here so a refresh nobody awaits any more is not "lost"
