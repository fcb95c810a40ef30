"""`invoicebot sandbox`: the fake QuickBooks Online, the fake portal and the Slack emulator
on fixed ports, without the bot. Prints their addresses and credentials: the settings to
run `invoicebot run` from another terminal, or to point a portal connector or
`invoicebot portal-check` at the fake portal."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
from dataclasses import dataclass
from typing import TextIO

from bot.demo import BOT_CLIENT, WEBHOOK_VERIFIER, WEBHOOK_WINDOW, SandboxWorld, sandbox_world
from bot.http import QBO_WEBHOOK_PATH, SLACK_PATH
from sandbox.qbo.webhooks import WebhookSender

QBO_PORT = 8080
PORTAL_PORT = 8081
"""The bot's default PORTAL_BASE_URL is http://127.0.0.1:8081."""
SLACK_PORT = 8082
BOT_PORT = 3000
"""Where the bot listens by default (HTTP_PORT): the emulator sends commands there."""
SIGNING_SECRET = "sandbox-signing-secret"
DATABASE_URL = "sqlite+aiosqlite:///./invoicebot-sandbox.db"


@dataclass(frozen=True)
class SandboxOptions:
    qbo_port: int = QBO_PORT
    portal_port: int = PORTAL_PORT
    slack_port: int = SLACK_PORT
    bot_port: int = BOT_PORT
    invoices: int | None = None
    """How many invoices match on both sides (None: the seeded 300)."""
    sync_seconds: float = 3.0


def bot_environment(world: SandboxWorld, *, bot_port: int = BOT_PORT) -> dict[str, str]:
    """The environment `invoicebot run` needs to run against ``world``."""
    return {
        "SLACK_MODE": "http",
        "SLACK_API_URL": world.emulator.api_url,
        "SLACK_BOT_TOKEN": world.emulator.bot_token,
        "SLACK_SIGNING_SECRET": world.emulator.signing_secret,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(bot_port),
        "QBO_BASE_URL": world.qbo_url,
        "QBO_TOKEN_URL": f"{world.qbo_url}/oauth2/v1/tokens/bearer",
        "QBO_REALM_ID": world.qbo.realm_id,
        "QBO_CLIENT_ID": BOT_CLIENT[0],
        "QBO_CLIENT_SECRET": BOT_CLIENT[1],
        "QBO_REFRESH_TOKEN": world.bot_refresh_token,
        "PORTAL_BASE_URL": world.portal_url,
        "PORTAL_API_KEY": world.portal.api_key,
        "DATABASE_URL": DATABASE_URL,
        "QBO_WEBHOOK_VERIFIER": WEBHOOK_VERIFIER,
    }


def banner(world: SandboxWorld, *, bot_port: int = BOT_PORT) -> str:
    env = bot_environment(world, bot_port=bot_port)
    invoices = len(world.portal.invoices)
    exports = " \\\n  ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    return f"""\
Invoice Resync Bot sandbox: fake QuickBooks Online, fake portal and Slack emulator, no bot.
  QuickBooks Online  {world.qbo_url}  (realm {world.qbo.realm_id}, OAuth app {BOT_CLIENT[0]})
  Portal API         {world.portal_url}/api/v1  (X-API-Key: {world.portal.api_key}; \
{invoices} invoices)
  Slack Web API      {world.emulator.api_url}  (sends /invoice and clicks to \
{world.emulator.request_url})

Run the bot against it from another terminal:
  export {exports}
  invoicebot run
(The QuickBooks refresh token rotates: the bot keeps the newest in its database. With a
new database, restart the sandbox.)

Check the portal against the contract (docs/portal-api.yaml):
  invoicebot portal-check --base-url {world.portal_url} --api-key {world.portal.api_key}

Ctrl-C stops the sandbox."""


async def run_sandbox(
    options: SandboxOptions, *, output: TextIO, input_stream: TextIO | None = None
) -> None:
    """Serve until SIGINT or SIGTERM; with ``input_stream``, also run the console on it
    (commands go to the bot at ``bot_port``) and stop at its end."""
    async with sandbox_world(
        matching=options.invoices,
        sync_seconds=options.sync_seconds,
        qbo_port=options.qbo_port,
        portal_port=options.portal_port,
        slack_port=options.slack_port,
        signing_secret=SIGNING_SECRET,
    ) as world:
        world.emulator.request_url = f"http://127.0.0.1:{options.bot_port}{SLACK_PATH}"
        webhooks = WebhookSender(  # the fake QuickBooks' webhooks, to the bot's port
            realm_id=world.qbo.realm_id,
            url=f"http://127.0.0.1:{options.bot_port}{QBO_WEBHOOK_PATH}",
            verifier=WEBHOOK_VERIFIER,
            window=WEBHOOK_WINDOW,
            clock=world.qbo.clock,  # a change's time is its LastUpdatedTime
        )
        world.qbo.on_change = webhooks.notify
        output.write(banner(world, bot_port=options.bot_port) + "\n")
        output.flush()
        try:
            if input_stream is not None:
                from sandbox.console import run_console

                await run_console(
                    world.emulator, input_stream=input_stream, output=output, qbo=world.qbo
                )
                return
            await _until_stopped()
        finally:
            world.qbo.on_change = None
            await webhooks.aclose()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = (signal.SIGINT, signal.SIGTERM)
    for sig in handled:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in handled:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
