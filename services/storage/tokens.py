"""The accounting connection's OAuth tokens, kept in the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.models import TokenSet, utcnow
from services.storage.db import Database
from services.storage.tables import OAuthTokenRow


class DbTokenStore:
    """TokenStore backed by the ``oauth_tokens`` table."""

    def __init__(self, db: Database, *, connection: str) -> None:
        self._db = db
        self._connection = connection
        self._lock = asyncio.Lock()

    async def load(self) -> TokenSet | None:
        async with self._db.session() as session:
            row = await session.get(OAuthTokenRow, self._connection)
            if row is None:
                return None
            return TokenSet(
                access_token=row.access_token,
                access_token_expires_at=row.access_token_expires_at,
                refresh_token=row.refresh_token,
                refresh_token_expires_at=row.refresh_token_expires_at,
            )

    async def save(self, tokens: TokenSet) -> None:
        async with self._db.session() as session:
            row = await session.get(OAuthTokenRow, self._connection)
            if row is None:
                row = OAuthTokenRow(
                    connection=self._connection,
                    access_token=tokens.access_token,
                    access_token_expires_at=tokens.access_token_expires_at,
                    refresh_token=tokens.refresh_token,
                )
            row.access_token = tokens.access_token
            row.access_token_expires_at = tokens.access_token_expires_at
            row.refresh_token = tokens.refresh_token
            row.refresh_token_expires_at = tokens.refresh_token_expires_at
            row.updated_at = utcnow()
            session.add(row)
            await session.commit()

    @asynccontextmanager
    async def refresh_lock(self) -> AsyncIterator[None]:
        async with self._lock:
            yield
