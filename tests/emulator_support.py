"""A bot against the Slack emulator alone, in process: QuickBooks and the portal are ports
nothing may use (for bad input and other tests that stop before any work)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from bot.bootstrap import Container, bootstrap
from bot.settings import Settings
from sandbox.slack.emulator import SlackEmulator


class Untouchable:
    """A port that counts every use (none is expected: the work is never run here)."""

    name = "untouchable"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise AssertionError(f"{name} called")

        return call

    async def aclose(self) -> None:
        pass


async def emulator_bot(
    emulator: SlackEmulator, database: Path, accounting: Untouchable, portal: Untouchable
) -> Container:
    """The bot's container in HTTP mode, talking to ``emulator`` only."""
    settings = Settings(
        _env_file=None,
        slack_bot_token=SecretStr(emulator.bot_token),
        slack_signing_secret=SecretStr(emulator.signing_secret),
        slack_mode="http",
        slack_api_url=emulator.api_url,
        database_url=f"sqlite+aiosqlite:///{database}",
    )
    slack = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    return await bootstrap(settings, accounting=accounting, portal=portal, slack=slack)
