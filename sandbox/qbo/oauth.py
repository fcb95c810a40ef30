"""The fake Intuit OAuth2 server: clients, rotating refresh tokens, expiring access tokens."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass
class _Client:
    secret: str


@dataclass
class _RefreshToken:
    client_id: str
    expires_at: datetime
    valid: bool = True


@dataclass
class _AccessToken:
    client_id: str
    realm_id: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenGrant:
    """The answer of the token endpoint: HTTP status and JSON body."""

    status: int
    body: dict[str, Any]


class OAuthServer:
    """Holds the tokens; the knobs (TTLs, rotation) are passed in by the caller."""

    def __init__(self, realm_id: str) -> None:
        self.realm_id = realm_id
        self._clients: dict[str, _Client] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        self._access: dict[str, _AccessToken] = {}
        self.refresh_count = 0
        """Successful refreshes so far (tests count them)."""

    def register_client(
        self, client_id: str, client_secret: str, *, now: datetime, ttl: int
    ) -> str:
        """A person connects the app: the client exists and gets a fresh refresh token."""
        self._clients[client_id] = _Client(client_secret)
        return self._new_refresh(client_id, now + timedelta(seconds=ttl))

    def _new_refresh(self, client_id: str, expires_at: datetime) -> str:
        token = "AB11" + secrets.token_urlsafe(36)
        self._refresh[token] = _RefreshToken(client_id, expires_at)
        return token

    def client_ok(self, client_id: str, client_secret: str) -> bool:
        client = self._clients.get(client_id)
        return client is not None and secrets.compare_digest(client.secret, client_secret)

    def refresh(
        self,
        client_id: str,
        refresh_token: str,
        *,
        now: datetime,
        access_ttl: int,
        refresh_ttl: int,
        rotate: bool,
    ) -> TokenGrant:
        record = self._refresh.get(refresh_token)
        if (
            record is None
            or not record.valid
            or record.client_id != client_id
            or record.expires_at <= now
        ):
            return TokenGrant(400, {"error": "invalid_grant"})
        if rotate:
            record.valid = False
            refresh_token = self._new_refresh(client_id, now + timedelta(seconds=refresh_ttl))
        else:
            record.expires_at = now + timedelta(seconds=refresh_ttl)
        access = secrets.token_urlsafe(48)
        self._access[access] = _AccessToken(
            client_id, self.realm_id, now + timedelta(seconds=access_ttl)
        )
        self.refresh_count += 1
        return TokenGrant(
            200,
            {
                "token_type": "bearer",
                "expires_in": access_ttl,
                "refresh_token": refresh_token,
                "x_refresh_token_expires_in": refresh_ttl,
                "access_token": access,
            },
        )

    def check_access(self, token: str, *, now: datetime) -> tuple[str | None, str]:
        """(realm id, "") for a valid token, else (None, the reason for the 401 detail)."""
        record = self._access.get(token)
        if record is None:
            return None, "Token invalid: the access token is not recognised"
        if record.expires_at <= now:
            return None, "Token expired: the access token has expired"
        return record.realm_id, ""

    def expire_access_tokens(self, *, now: datetime) -> None:
        for record in self._access.values():
            record.expires_at = min(record.expires_at, now)

    def revoke(self, client_id: str) -> None:
        """The connection is revoked: every token of this client stops working."""
        for refresh in self._refresh.values():
            if refresh.client_id == client_id:
                refresh.valid = False
        self._access = {k: v for k, v in self._access.items() if v.client_id != client_id}
