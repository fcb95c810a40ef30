"""The accounting connection's OAuth tokens, kept in the database and shared by every
replica: one refresher at a time across processes (``refresh_lock``), and every replica
reads the newest tokens from the table. With a ``TokenCipher`` (TOKEN_ENCRYPTION_KEY) both
tokens are sealed at rest (``token_crypto``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.models import TokenSet, utcnow
from services.storage import locks
from services.storage.db import Database
from services.storage.tables import OAuthTokenRow
from services.storage.token_crypto import TokenCipher, open_stored, seal_for_storage


class DbTokenStore:
    """TokenStore backed by the ``oauth_tokens`` table."""

    def __init__(
        self,
        db: Database,
        *,
        connection: str,
        lock_timeout: float = 60.0,
        cipher: TokenCipher | None = None,
    ) -> None:
        self._db = db
        self._cipher = cipher
        self._connection = connection
        self._lock = asyncio.Lock()
        self._lock_timeout = lock_timeout

    async def load(self) -> TokenSet | None:
        async with self._db.session() as session:
            row = await session.get(OAuthTokenRow, self._connection)
            if row is None:
                return None
            return TokenSet(
                access_token=open_stored(self._cipher, row.access_token),
                access_token_expires_at=row.access_token_expires_at,
                refresh_token=open_stored(self._cipher, row.refresh_token),
                refresh_token_expires_at=row.refresh_token_expires_at,
            )

    async def save(self, tokens: TokenSet) -> None:
        access = seal_for_storage(self._cipher, tokens.access_token)
        refresh = seal_for_storage(self._cipher, tokens.refresh_token)
        async with self._db.session() as session:
            row = await session.get(OAuthTokenRow, self._connection)
            if row is None:
                row = OAuthTokenRow(
                    connection=self._connection,
                    access_token=access,
                    access_token_expires_at=tokens.access_token_expires_at,
                    refresh_token=refresh,
                )
            row.access_token = access
            row.access_token_expires_at = tokens.access_token_expires_at
            row.refresh_token = refresh
            row.refresh_token_expires_at = tokens.refresh_token_expires_at
            row.updated_at = utcnow()
            session.add(row)
            await session.commit()

    async def seed(self, tokens: TokenSet, *, replacing: str | None = None) -> bool:
        """Store ``tokens`` if no row exists, or (``replacing``) if the stored refresh token
        is still that one. Atomic: replicas starting together must not put back a refresh
        token another replica already rotated. True if written."""
        table = OAuthTokenRow.__table__  # type: ignore[attr-defined]
        if replacing is not None and self._cipher is not None:
            # Sealing is not deterministic: compare against the stored text itself, if it
            # still opens to ``replacing`` (compare-and-set on what is in the row).
            async with self._db.session() as session:
                row = await session.get(OAuthTokenRow, self._connection)
                stored = None if row is None else row.refresh_token
            if stored is None or open_stored(self._cipher, stored) != replacing:
                return False
            replacing = stored
        values = {
            "access_token": seal_for_storage(self._cipher, tokens.access_token),
            "access_token_expires_at": tokens.access_token_expires_at,
            "refresh_token": seal_for_storage(self._cipher, tokens.refresh_token),
            "refresh_token_expires_at": tokens.refresh_token_expires_at,
            "updated_at": utcnow(),
        }
        insert = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        statement = insert(table).values(connection=self._connection, **values)
        if replacing is None:
            statement = statement.on_conflict_do_nothing(index_elements=["connection"])
        else:
            statement = statement.on_conflict_do_update(
                index_elements=["connection"],
                set_=values,
                where=table.c.refresh_token == replacing,
            )
        async with self._db.engine.begin() as conn:
            written = (await conn.execute(statement.returning(table.c.connection))).first()
        return written is not None

    @asynccontextmanager
    async def refresh_lock(self) -> AsyncIterator[None]:
        """One refresher at a time: in this process (an asyncio lock), then across processes
        (an advisory lock on PostgreSQL, a lock row on SQLite). The caller re-loads the tokens
        once inside: another process may have refreshed them meanwhile."""
        async with (
            self._lock,
            locks.exclusive(
                self._db, name=f"token-refresh:{self._connection}", timeout=self._lock_timeout
            ),
        ):
            yield
