"""`invoicebot`: run the bot, or the bot on its sandbox with the terminal console."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
import uvicorn

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.bootstrap import Container

cli = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "uvicorn.access", "slack_bolt", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class GracefulServer(uvicorn.Server):
    """uvicorn's server, except that it leaves the signals to ``Shutdown``: uvicorn raises
    SIGTERM again once it has stopped, which would end the process before the bot hands its
    running jobs to the other replicas and closes its clients."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Shutdown:
    """SIGTERM and SIGINT, from start to exit: the first asks the server to stop (or, while
    the bot is still starting, not to serve at all); later ones are only logged, so the
    hand-over of running jobs is never cut short."""

    def __init__(self) -> None:
        self.requested = False
        self.server: uvicorn.Server | None = None
        self._handled = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> Shutdown:
        loop = asyncio.get_running_loop()
        for sig in self._handled:
            loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._handled:
            loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        log = logging.getLogger("bot")
        if self.requested:
            log.info("%s again: still handing over, please wait", sig.name)
            return
        log.info("%s: stopping", sig.name)
        self.requested = True
        if self.server is not None:
            self.server.should_exit = True


@cli.command()
def run() -> None:
    """Run the bot against Slack and the real systems (settings from the environment)."""
    from bot.scheduler import digest_trigger

    try:
        settings = Settings().check_secrets()
        digest_trigger(settings.digest_cron, settings.digest_timezone)
    except ValueError as exc:
        typer.echo(f"invoicebot: {exc}", err=True)
        raise typer.Exit(2) from None
    setup_logging(settings.log_level)
    asyncio.run(_run(settings))


async def _run(settings: Settings) -> None:
    from bot.bootstrap import bootstrap

    with Shutdown() as shutdown:
        container = await bootstrap(settings)
        try:
            if not shutdown.requested:
                await _serve(settings, container, shutdown)
        finally:
            logging.getLogger("bot").info("shutting down: running jobs go to the other replicas")
            await container.aclose()


async def _serve(settings: Settings, container: Container, shutdown: Shutdown) -> None:
    from bot.app import build_app
    from bot.flows.payment_alerts import start_payment_alerts
    from bot.flows.resync import resume_jobs
    from bot.http import build_http_app
    from bot.scheduler import start_scheduler

    app = build_app(container)
    log = logging.getLogger("bot")
    scheduler = start_scheduler(container)  # the daily digest, when DIGEST_CHANNEL is set
    try:
        resumed = await resume_jobs(container)
        if resumed:
            log.info("resumed %d unfinished resync job(s)", resumed)
        start_payment_alerts(container)  # failed portal payments, announced as they happen
        config = uvicorn.Config(
            build_http_app(app, container),
            host=settings.http_host,
            port=settings.http_port,
            lifespan="off",
            access_log=False,
            log_level="warning",
        )
        server = shutdown.server = GracefulServer(config)
        server.should_exit = shutdown.requested  # a signal during the start: do not serve
        if settings.socket_mode:
            from bot.socket import socket_mode

            async with socket_mode(app, settings):
                log.info("connected to Slack in Socket Mode; health on port %d", settings.http_port)
                await server.serve()
        else:
            log.info("listening on %s:%d/slack/events", settings.http_host, settings.http_port)
            await server.serve()
    finally:
        if scheduler is not None:
            scheduler.shutdown()


@cli.command()
def console(
    sync_seconds: float = typer.Option(3.0, help="How long a full sync takes in the sandbox."),
    quiet: float = typer.Option(0.7, help="Seconds without activity that count as settled."),
) -> None:
    """The bot on its sandbox (fake QuickBooks Online, fake portal, Slack emulator), driven
    from a Slack client in the terminal. Reads commands from a pipe too."""
    setup_logging("WARNING")
    asyncio.run(_console(sync_seconds=sync_seconds, quiet=quiet))


async def _console(*, sync_seconds: float, quiet: float) -> None:
    from bot.demo import demo_stack
    from sandbox.console import run_console

    async with demo_stack(sync_seconds=sync_seconds) as (world, bot):
        await run_console(
            world.emulator,
            input_stream=sys.stdin,
            output=sys.stdout,
            is_busy=lambda: bot.container.tasks.busy,
            quiet=quiet,
            portal=world.portal,
            pay_wait=2 * bot.container.settings.payment_alert_seconds + quiet,
        )


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
