"""The QBO tokens at rest: sealed when TOKEN_ENCRYPTION_KEY is set, readable after a key
rotation, refused clearly with a wrong key, and never stored in the clear by the running bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError

from bot.demo import SandboxWorld, sandbox_world
from bot.settings import Settings
from sandbox.qbo.state import FaultKind
from services.models import TokenSet
from services.storage.db import Database
from services.storage.tables import OAuthTokenRow
from services.storage.token_crypto import PREFIX, TokenCipher, TokenKeyError
from services.storage.tokens import DbTokenStore
from tests.e2e.conftest import channel_messages
from tests.faults_support import command, fault_bot

TOKENS = TokenSet(
    access_token="access-plain-123",
    access_token_expires_at=datetime(2026, 12, 1, tzinfo=UTC),
    refresh_token="refresh-plain-456",
)


async def raw_row(db: Database, connection: str = "qbo:1") -> OAuthTokenRow:
    async with db.session() as session:
        row = await session.get(OAuthTokenRow, connection)
    assert row is not None
    return row


def cipher(*keys: bytes) -> TokenCipher:
    return TokenCipher([k.decode() for k in keys])


async def test_tokens_are_sealed_at_rest_and_read_back(db: Database) -> None:
    store = DbTokenStore(db, connection="qbo:1", cipher=cipher(Fernet.generate_key()))
    await store.save(TOKENS)
    row = await raw_row(db)
    for stored, plain in ((row.access_token, "access-plain"), (row.refresh_token, "refresh-plain")):
        assert stored.startswith(PREFIX) and plain not in stored
    assert await store.load() == TOKENS


async def test_plaintext_rows_are_read_then_sealed_on_the_next_save(db: Database) -> None:
    await DbTokenStore(db, connection="qbo:1").save(TOKENS)
    assert (await raw_row(db)).refresh_token == TOKENS.refresh_token
    store = DbTokenStore(db, connection="qbo:1", cipher=cipher(Fernet.generate_key()))
    assert await store.load() == TOKENS
    await store.save(TOKENS.model_copy(update={"refresh_token": "rotated"}))
    assert (await raw_row(db)).refresh_token.startswith(PREFIX)


async def test_a_rotated_key_still_opens_old_rows_and_seals_with_the_new(db: Database) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    await DbTokenStore(db, connection="qbo:1", cipher=cipher(old)).save(TOKENS)
    rotated = DbTokenStore(db, connection="qbo:1", cipher=cipher(new, old))
    assert await rotated.load() == TOKENS
    await rotated.save(TOKENS)
    only_new = DbTokenStore(db, connection="qbo:1", cipher=cipher(new))
    assert await only_new.load() == TOKENS


async def test_a_wrong_or_missing_key_is_a_clear_error_without_secrets(db: Database) -> None:
    key = Fernet.generate_key()
    await DbTokenStore(db, connection="qbo:1", cipher=cipher(key)).save(TOKENS)
    wrong = Fernet.generate_key()
    with pytest.raises(TokenKeyError) as raised:
        await DbTokenStore(db, connection="qbo:1", cipher=cipher(wrong)).load()
    assert "TOKEN_ENCRYPTION_KEY" in str(raised.value)
    for secret in (key.decode(), wrong.decode(), TOKENS.refresh_token):
        assert secret not in str(raised.value)
    with pytest.raises(TokenKeyError, match="set TOKEN_ENCRYPTION_KEY"):
        await DbTokenStore(db, connection="qbo:1").load()


async def test_seeding_compares_the_sealed_token_it_replaces(db: Database) -> None:
    store = DbTokenStore(db, connection="qbo:1", cipher=cipher(Fernet.generate_key()))
    assert await store.seed(TOKENS)
    fresh = TOKENS.model_copy(update={"refresh_token": "r9"})
    assert not await store.seed(fresh, replacing="not-the-stored-one")
    assert await store.load() == TOKENS
    assert await store.seed(fresh, replacing=TOKENS.refresh_token)
    assert await store.load() == fresh
    assert (await raw_row(db)).refresh_token.startswith(PREFIX)


def test_an_unusable_key_refuses_to_start() -> None:
    base = {
        "slack_bot_token": "xoxb-1",
        "slack_signing_secret": "s3cret-signing",
        "qbo_client_secret": "qbo-s3cret",
        "portal_api_key": "portal-key",
        "qbo_realm_id": "1",
        "qbo_client_id": "client",
    }
    with pytest.raises(ValueError, match="not a Fernet key"):
        Settings(**base, token_encryption_key=SecretStr("not-a-key")).check_secrets()  # type: ignore[arg-type]
    good = Fernet.generate_key().decode()
    settings = Settings(**base, token_encryption_key=SecretStr(good)).check_secrets()  # type: ignore[arg-type]
    assert settings.token_cipher() is not None
    assert Settings(**base).check_secrets().token_cipher() is None  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Settings(**base, money_tolerance="-1")  # type: ignore[arg-type]


@pytest.fixture
async def world() -> AsyncIterator[SandboxWorld]:
    async with sandbox_world(sync_seconds=0.2, record_resync_seconds=0.1) as w:
        yield w


async def test_the_running_bot_never_stores_a_token_in_the_clear(
    world: SandboxWorld, tmp_path: Path
) -> None:
    key = Fernet.generate_key().decode()
    async with fault_bot(world, tmp_path, token_encryption_key=key) as bot:
        await command(world, bot, "check 11003")  # the first refresh, from the seed
        world.qbo.inject(FaultKind.EXPIRED_TOKEN)  # and a rotation
        await command(world, bot, "check 11004")
        realm = bot.container.settings.qbo_realm_id
        row = await raw_row(bot.container.db, f"qbo:{realm}")
        opened = await DbTokenStore(
            bot.container.db, connection=f"qbo:{realm}", cipher=TokenCipher([key])
        ).load()
    assert opened is not None and opened.refresh_token and opened.access_token
    assert opened.refresh_token not in row.refresh_token
    assert opened.access_token not in row.access_token
    assert row.refresh_token.startswith(PREFIX) and row.access_token.startswith(PREFIX)
    texts = [f"{m.text} {m.blocks}" for m in channel_messages(world)]
    assert any("11004" in t for t in texts)  # the check was answered after the rotation
