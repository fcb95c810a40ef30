"""Secrets and data: secrets are SecretStr and reach no log line and no Slack message;
errors, refusals and history are private; the audit log is append-only from the bot."""

from __future__ import annotations

import ast
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import SecretStr

from bot.demo import BOT_CLIENT, RunningBot, SandboxWorld, sandbox_world
from bot.redact import MASK, Redactor, install_redaction
from bot.settings import Settings
from sandbox.qbo.state import FaultKind
from services.models import utcnow
from services.storage.audit import AuditLog
from services.storage.tokens import DbTokenStore
from tests.e2e.conftest import channel_messages
from tests.faults_support import ALICE, command, fault_bot, private

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def world() -> AsyncIterator[SandboxWorld]:
    async with sandbox_world(sync_seconds=0.2, record_resync_seconds=0.1) as w:
        yield w


async def stored_tokens(bot: RunningBot) -> list[str]:
    realm = bot.container.settings.qbo_realm_id
    tokens = await DbTokenStore(bot.container.db, connection=f"qbo:{realm}").load()
    return [t for t in (tokens.access_token, tokens.refresh_token) if t] if tokens else []


def configured_secrets(settings: Settings) -> list[str]:
    values: list[SecretStr | None] = [
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.qbo_client_secret,
        settings.qbo_refresh_token,
        settings.portal_api_key,
    ]
    return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


def everything_slack_saw(world: SandboxWorld) -> str:
    state = world.emulator.state
    parts: list[Any] = [state.messages, state.calls, state.changes]
    parts += [f.content for f in state.files.values()]
    return "\n".join(repr(p) for p in parts)


async def test_no_secret_reaches_a_log_line_or_a_slack_message(
    world: SandboxWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "slack_sdk", "slack_bolt", "services", "bot"):
        caplog.set_level(logging.DEBUG, logger=name)  # restored after the test
    seen: set[str] = set()
    async with fault_bot(world, tmp_path) as bot:
        secrets = configured_secrets(bot.container.settings)
        await command(world, bot, "check 11003")  # refreshes the access token
        seen.update(await stored_tokens(bot))
        await command(world, bot, "resync company 58")
        world.qbo.inject(FaultKind.EXPIRED_TOKEN)  # a rotation: new access and refresh tokens
        await command(world, bot, "check 11004")
        seen.update(await stored_tokens(bot))
        world.qbo.knobs.fault_rate = 1.0  # a failure logged at ERROR after the retries
        await command(world, bot, "check 11005")
        world.qbo.knobs.fault_rate = 0.0
        world.qbo.revoke(BOT_CLIENT[0])  # and the connection lost, logged at ERROR
        await command(world, bot, "check 11006")
        seen.update(await stored_tokens(bot))
    assert any(r.levelno >= logging.ERROR for r in caplog.records)
    assert any(r.name.startswith("slack_sdk") for r in caplog.records)
    assert any(r.name.startswith("httpx") for r in caplog.records)
    assert len(seen) >= 4  # two access tokens, two refresh tokens at least
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    slack = everything_slack_saw(world)
    for secret in [*secrets, *seen]:
        assert secret not in logged, f"a secret ({secret[:4]}...) was logged"
        assert secret not in slack, f"a secret ({secret[:4]}...) reached Slack"


def test_every_secret_setting_is_a_secret_str() -> None:
    for name, field in Settings.model_fields.items():
        secretish = any(word in name for word in ("token", "secret", "api_key", "password"))
        if secretish and not name.endswith("_url"):
            assert SecretStr in (field.annotation, *get_args(field.annotation)), name
    settings = Settings(
        _env_file=None,
        slack_bot_token=SecretStr("xoxb-123456789-abcdef"),
        qbo_client_secret=SecretStr("client-secret-value"),
        portal_api_key=SecretStr("portal-key-value"),
    )
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        for secret in ("xoxb-123456789-abcdef", "client-secret-value", "portal-key-value"):
            assert secret not in text


def test_the_log_redactor_scrubs_known_and_credential_shaped_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redactor = install_redaction()
    redactor.add(SecretStr("s3cr3t-signing-value"))
    log = logging.getLogger("bot.test")
    with caplog.at_level(logging.INFO):
        log.info("signing with %s", "s3cr3t-signing-value")
        log.info("headers {'Authorization': 'Bearer abc.DEF-123'} and xoxb-1111-2222-abcd")
        log.info("form refresh_token=AB11xyz&grant_type=refresh_token, 'access_token': 'eyJz'")
        try:
            raise ValueError("the key s3cr3t-signing-value leaked into an error")
        except ValueError:
            log.exception("failed")
    text = caplog.text
    for leaked in ("s3cr3t-signing-value", "abc.DEF-123", "xoxb-1111", "AB11xyz", "eyJz"):
        assert leaked not in text
    assert text.count(MASK) >= 6
    assert "grant_type=refresh_token" in text  # ordinary words stay


def test_short_or_empty_values_are_not_treated_as_secrets() -> None:
    redactor = Redactor()
    redactor.add("", None, "abc", SecretStr(""))
    assert redactor.redact("abc and the rest") == "abc and the rest"


async def test_errors_refusals_usage_and_history_are_private(
    world: SandboxWorld, tmp_path: Path
) -> None:
    yesterday = (utcnow() - timedelta(days=1)).date().isoformat()
    async with fault_bot(world, tmp_path, full_resync_users=["U0SOMEONE9"]) as bot:
        await command(world, bot, f"resync --since {yesterday}")  # refused: not on the list
        await command(world, bot, "history")
        await command(world, bot, "check not-a-number!")
        world.qbo.knobs.fault_rate = 1.0
        world.qbo.knobs.fault_kinds = (FaultKind.SERVER_ERROR,)
        await command(world, bot, "check 11003")  # QuickBooks fails
    assert channel_messages(world) == []
    answers = private(world)
    assert len(answers) == 4
    assert "limited to the people named by the admins" in answers[0]
    assert "Usage" in answers[2] and "did not answer" in answers[3]
    assert all(m.ephemeral_to == ALICE for m in world.emulator.state.ephemerals())


def test_the_audit_log_is_append_only_from_the_bots_side() -> None:
    public = {name for name in vars(AuditLog) if not name.startswith("_")}
    assert public == {"record", "recent"}
    source = (ROOT / "services/storage/audit.py").read_text()
    calls = {
        node.func.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & {"delete", "update", "merge", "execute"}
    # Nothing else in the bot touches the audit table.
    touching = sorted(
        str(path.relative_to(ROOT))
        for folder in ("bot", "commands", "services")
        for path in (ROOT / folder).rglob("*.py")
        if "AuditRow" in path.read_text() or "audit_log" in path.read_text()
    )
    allowed = ("services/storage/audit.py", "services/storage/tables.py")
    extra = [p for p in touching if p not in allowed and "/migrations/" not in p]
    assert extra == []
