"""A TokenStore in memory, for tests (production keeps tokens in the database)."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from services.models import TokenSet

EXPIRED = datetime(1970, 1, 1, tzinfo=UTC)


def initial_tokens(refresh_token: str) -> TokenSet:
    """Tokens known only by their refresh token: the first request refreshes them."""
    return TokenSet(access_token="", access_token_expires_at=EXPIRED, refresh_token=refresh_token)


class MemoryTokenStore:
    """Keeps the newest TokenSet; ``saved`` lists every save in order (tests inspect it)."""

    def __init__(self, tokens: TokenSet | None = None) -> None:
        self._tokens = tokens
        self._lock = asyncio.Lock()
        self.saved: list[TokenSet] = []

    @classmethod
    def from_refresh_token(cls, refresh_token: str) -> MemoryTokenStore:
        return cls(initial_tokens(refresh_token))

    async def load(self) -> TokenSet | None:
        return self._tokens

    async def save(self, tokens: TokenSet) -> None:
        self._tokens = tokens
        self.saved.append(tokens)

    def refresh_lock(self) -> AbstractAsyncContextManager[None]:
        return self._lock
