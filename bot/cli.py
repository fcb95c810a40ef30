"""`invoicebot`: run the bot, or the bot on its sandbox with the terminal console."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

import click
import uvicorn

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.bootstrap import Container


@click.group(help=__doc__, no_args_is_help=True)
def cli() -> None:
    pass


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "uvicorn.access", "slack_bolt", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Shutdown:
    """SIGTERM and SIGINT, from start to exit: the first asks the server to stop (or, while
    the bot is still starting, not to serve at all); later ones are only logged, so the
    hand-over of running jobs is never cut short.

    While ``uvicorn.Server.serve()`` runs, uvicorn handles the signals itself (it stops
    serving), then restores these handlers and raises each signal it caught again: they
    arrive here, where they ask for the shutdown already under way instead of ending the
    process before the bot hands its running jobs to the other replicas."""

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
        click.echo(f"invoicebot: {exc}", err=True)
        raise SystemExit(2) from None
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
    from bot.flows.fixes import resume_fixes
    from bot.flows.payment_alerts import start_payment_alerts
    from bot.flows.resync import resume_jobs
    from bot.flows.watch import start_watch
    from bot.http import build_http_app
    from bot.scheduler import start_scheduler

    log = logging.getLogger("bot")
    worker = None
    if settings.work_process:
        from bot.work import ToWorker

        worker = container.work = ToWorker(container)
        await worker.start()
    app = build_app(container)
    # The daily digest, when DIGEST_CHANNEL is set (in the worker process when there is one).
    scheduler = None if worker else start_scheduler(container)
    try:
        resumed = await resume_jobs(container)
        if resumed:
            log.info("resumed %d unfinished resync job(s)", resumed)
        container.tasks.spawn_long(resume_fixes(container), name="fixes:resume")
        start_payment_alerts(container)  # failed portal payments, announced as they happen
        start_watch(container)  # QuickBooks webhooks and CDC: changes and collisions
        config = uvicorn.Config(
            build_http_app(app, container),
            host=settings.http_host,
            port=settings.http_port,
            lifespan="off",
            access_log=False,
            log_level="warning",
        )
        server = shutdown.server = uvicorn.Server(config)
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
        if worker is not None:
            await worker.stop()


@cli.command()
@click.option("--sync-seconds", default=3.0, help="How long a full sync takes in the sandbox.")
@click.option("--quiet", default=0.7, help="Seconds without activity that count as settled.")
def console(sync_seconds: float, quiet: float) -> None:
    """The bot on its sandbox (fake QuickBooks Online, fake portal, Slack emulator), driven
    from a Slack client in the terminal. Reads commands from a pipe too."""
    setup_logging("WARNING")
    asyncio.run(_console(sync_seconds=sync_seconds, quiet=quiet))


SANDBOX_INVOICES = "INVOICEBOT_SANDBOX_INVOICES"
"""Environment: how many invoices the console's sandbox seeds (`invoicebot sandbox
--invoices`); 3000 shows the digest's CSV."""


SANDBOX_WEBHOOKS = "INVOICEBOT_SANDBOX_WEBHOOKS"
"""Environment: the format of the fake QuickBooks' webhooks, `cloudevents` or `legacy`."""


def sandbox_invoices() -> int | None:
    raw = os.environ.get(SANDBOX_INVOICES, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise click.BadParameter(f"{SANDBOX_INVOICES} must be a whole number, not {raw!r}")
    return int(raw)


async def _console(*, sync_seconds: float, quiet: float) -> None:
    from bot.demo import demo_stack
    from bot.flows.watch import watch_wait
    from sandbox.console import run_console

    world_options: dict[str, Any] = {"sync_seconds": sync_seconds}
    invoices = sandbox_invoices()
    if invoices is not None:
        world_options["matching"] = invoices
    fmt = os.environ.get(SANDBOX_WEBHOOKS, "cloudevents").strip().lower() or "cloudevents"
    if fmt not in ("cloudevents", "legacy"):
        raise click.BadParameter(f"{SANDBOX_WEBHOOKS} is cloudevents or legacy, not {fmt!r}")
    async with demo_stack(webhook_format=fmt, **world_options) as (world, bot):  # type: ignore[arg-type]
        await run_console(
            world.emulator,
            input_stream=sys.stdin,
            output=sys.stdout,
            is_busy=lambda: bot.container.tasks.busy,
            quiet=quiet,
            portal=world.portal,
            pay_wait=2 * bot.container.settings.payment_alert_seconds + quiet,
            qbo=world.qbo,
            qbo_wait=watch_wait(bot.container.settings) + quiet,
        )


@cli.command()
@click.option("--qbo-port", default=8080, help="The fake QuickBooks Online's port (0: any).")
@click.option("--portal-port", default=8081, help="The fake portal's port (0: any).")
@click.option("--slack-port", default=8082, help="The Slack emulator's port (0: any).")
@click.option("--bot-port", default=3000, help="Where the bot will listen (HTTP_PORT).")
@click.option(
    "--invoices",
    type=click.IntRange(min=0),
    default=None,
    help="Invoices that match on both sides (default 300); a larger world also has a "
    "stale copy in every 50 past the first 300.",
)
@click.option("--sync-seconds", default=3.0, help="How long a full sync takes.")
@click.option(
    "--console/--no-console",
    default=False,
    help="Also run the console here (commands go to the bot at --bot-port).",
)
def sandbox(
    *,
    qbo_port: int,
    portal_port: int,
    slack_port: int,
    bot_port: int,
    invoices: int | None,
    sync_seconds: float,
    console: bool,
) -> None:
    """The fake QuickBooks Online, fake portal and Slack emulator on fixed ports, without the
    bot: prints their addresses and credentials (the settings for `invoicebot run`)."""
    from bot.sandbox_run import SandboxOptions, run_sandbox

    setup_logging("WARNING")
    options = SandboxOptions(
        qbo_port=qbo_port,
        portal_port=portal_port,
        slack_port=slack_port,
        bot_port=bot_port,
        invoices=invoices,
        sync_seconds=sync_seconds,
    )
    try:
        asyncio.run(
            run_sandbox(options, output=sys.stdout, input_stream=sys.stdin if console else None)
        )
    except OSError as exc:  # a port in use
        click.echo(f"invoicebot sandbox: {exc}", err=True)
        raise SystemExit(2) from None


@cli.command("portal-check")
@click.option("--base-url", required=True, help="The portal's address (/api/v1 is appended).")
@click.option("--api-key", required=True, help="The portal's API key (sent in X-API-Key).")
@click.option(
    "--write-invoice",
    default=None,
    help="Also check the write paths on this one invoice: a record resync of it and a "
    "full sync of its integration from today.",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 1000),
    default=100,
    help="limit for the paged listings.",
)
@click.option(
    "--finish-timeout", default=600.0, help="Seconds to wait for a resync or sync to finish."
)
def portal_check(
    *,
    base_url: str,
    api_key: str,
    write_invoice: str | None,
    page_size: int,
    finish_timeout: float,
) -> None:
    """Check a portal against the Portal API contract (docs/portal-api.yaml): one line per
    check, PASS or FAIL with what was expected; exits 1 when a check fails."""
    from services.adapters.portal_check import Outcome, check_portal, repository_contract

    contract = repository_contract()
    mode = f"read-only, then writes on invoice {write_invoice}" if write_invoice else "read-only"
    click.echo(f"Portal API contract {contract.version} against {base_url} ({mode})")
    results = asyncio.run(
        check_portal(
            base_url=base_url,
            api_key=api_key,
            write_invoice=write_invoice,
            report=lambda result: click.echo(result.line()),
            contract=contract,
            page_size=page_size,
            finish_timeout=finish_timeout,
        )
    )
    counts = {o: sum(r.outcome is o for r in results) for o in Outcome}
    click.echo(
        f"{counts[Outcome.PASS]} passed, {counts[Outcome.FAIL]} failed, "
        f"{counts[Outcome.SKIP]} skipped"
    )
    if counts[Outcome.FAIL]:
        raise SystemExit(1)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
