"""`invoicebot sandbox` and `invoicebot portal-check` as a partner runs them: the sandbox in
its own process, the check against its portal from another; the printed settings are the
ones `invoicebot run` accepts; a larger world carries enough stale copies for the CSV."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.cli import SANDBOX_INVOICES, sandbox_invoices
from bot.demo import sandbox_world
from bot.sandbox_run import bot_environment
from bot.settings import Settings
from commands.digest_blocks import BUTTONED
from sandbox.scenarios import seed_invoices

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "bot.cli"]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "QBO_", "PORTAL_"))}


@pytest.mark.slow
def test_portal_check_passes_against_the_sandbox_process() -> None:
    sandbox = subprocess.Popen(
        [*CLI, "sandbox", "--qbo-port", "0", "--portal-port", "0", "--slack-port", "0"],
        cwd=ROOT,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert sandbox.stdout is not None
        printed = ""
        deadline = time.monotonic() + 60
        while "Ctrl-C stops the sandbox." not in printed:
            line = sandbox.stdout.readline()
            assert line and time.monotonic() < deadline, f"the sandbox did not start:\n{printed}"
            printed += line
        assert "SLACK_SIGNING_SECRET=sandbox-signing-secret" in printed
        found = re.search(r"portal-check --base-url (\S+) --api-key (\S+)", printed)
        assert found is not None, printed
        checked = subprocess.run(
            [*CLI, "portal-check", "--base-url", found[1], "--api-key", found[2]],
            cwd=ROOT,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        lines = checked.stdout.splitlines()
        assert lines[0].startswith("Portal API contract 1.4.0 against http://127.0.0.1:")
        assert lines[-1].endswith(" passed, 0 failed, 0 skipped")
        assert all(line.startswith("PASS ") for line in lines[1:-1])
        assert any(line.startswith("PASS invoices.paging: expected ") for line in lines)
    finally:
        sandbox.send_signal(signal.SIGINT)
        assert sandbox.wait(15) == 0


def test_portal_check_exits_non_zero_on_a_failure() -> None:
    checked = subprocess.run(
        [*CLI, "portal-check", "--base-url", "http://127.0.0.1:9", "--api-key", "k"],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 1
    assert "FAIL portal.reachable: expected an answer from http://127.0.0.1:9/api/v1" in (
        checked.stdout
    )
    assert checked.stdout.splitlines()[-1] == "0 passed, 1 failed, 0 skipped"


async def test_the_printed_settings_start_the_bot(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith(("SLACK_", "QBO_", "PORTAL_")):
            monkeypatch.delenv(name)
    async with sandbox_world(signing_secret="sandbox-signing-secret") as world:
        for name, value in bot_environment(world, bot_port=3456).items():
            monkeypatch.setenv(name, value)
        settings = Settings(_env_file=None).check_secrets()
        assert settings.portal_base_url == world.portal_url and settings.http_port == 3456
        assert settings.slack_signing_secret == SecretStr("sandbox-signing-secret")
        assert not settings.socket_mode


def test_a_larger_world_has_enough_stale_copies_for_the_csv() -> None:
    now = datetime.now(UTC)
    small = [r for r in seed_invoices(now) if r.qbo_balance != r.portal_balance]
    large = [r for r in seed_invoices(now, matching=3000) if r.qbo_balance != r.portal_balance]
    assert len(small) <= BUTTONED < len(large)
    drifted = [r for r in large if r not in small and r.number >= "11300"]
    assert drifted and all(r.qbo_updated > r.portal_synced for r in drifted)


def test_the_console_world_size_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SANDBOX_INVOICES, raising=False)
    assert sandbox_invoices() is None
    monkeypatch.setenv(SANDBOX_INVOICES, "3000")
    assert sandbox_invoices() == 3000
    monkeypatch.setenv(SANDBOX_INVOICES, "lots")
    with pytest.raises(Exception, match="whole number"):
        sandbox_invoices()
