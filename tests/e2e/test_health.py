"""/healthz, /readyz and /metrics on the bot's HTTP port, in HTTP and Socket Mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot.app import build_app
from bot.bootstrap import bootstrap
from bot.demo import SandboxWorld, sandbox_world
from bot.http import build_http_app
from bot.metrics import Metrics
from bot.socket import socket_mode
from sandbox.qbo.state import FaultKind
from sandbox.server import serving
from services.storage.db import Database
from tests.faults_support import command, fault_bot


@pytest.fixture
async def world() -> AsyncIterator[SandboxWorld]:
    async with sandbox_world(sync_seconds=0.2, record_resync_seconds=0.1) as w:
        yield w


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value in a /metrics answer (parsed as Prometheus parses it), 0 if absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def get(url: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as client:
        return await client.get(path)


async def test_health_ready_and_metrics_in_http_mode(world: SandboxWorld, tmp_path: Path) -> None:
    async with fault_bot(world, tmp_path) as bot:
        base = bot.server.url
        health = await get(base, "/healthz")
        assert health.status_code == 200
        assert health.json() | {"background_tasks": 0} == {
            "status": "ok",
            "database": "ok",
            "slack": "n/a",
            "mode": "http",
            "background_tasks": 0,
        }
        ready = await get(base, "/readyz")
        assert (ready.status_code, ready.json()["status"]) == (200, "ready")

        before = (await get(base, "/metrics")).text
        world.qbo.inject(FaultKind.SERVER_ERROR)
        await command(world, bot, "check 11003")
        await command(world, bot, "resync company 58")
        bot.container.metrics.digest_ended(12.5, ok=True)
        response = await get(base, "/metrics")
        assert response.headers["content-type"].startswith("text/plain; version=")
        after = response.text

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("invoicebot_upstream_requests_total", system="qbo", outcome="ok") >= 1
    assert grew("invoicebot_upstream_requests_total", system="qbo", outcome="transient") == 1
    assert grew("invoicebot_upstream_retries_total", system="qbo", reason="transient") == 1
    assert grew("invoicebot_upstream_requests_total", system="portal", outcome="ok") >= 3
    assert grew("invoicebot_slack_requests_total", outcome="acked") == 2
    assert metric(after, "invoicebot_resync_jobs", state="done") == 1
    assert metric(after, "invoicebot_resync_jobs", state="running") == 0
    assert metric(after, "invoicebot_digest_duration_seconds_sum", outcome="ok") == 12.5
    assert metric(after, "invoicebot_digest_duration_seconds_count", outcome="ok") == 1
    # Latency histograms: each HTTP attempt upstream, each check.
    latency = "invoicebot_upstream_request_duration_seconds_count"
    assert grew(latency, system="qbo") == grew(
        "invoicebot_upstream_requests_total", system="qbo", outcome="ok"
    ) + grew("invoicebot_upstream_requests_total", system="qbo", outcome="transient")
    assert grew(latency, system="portal") >= 3
    assert grew("invoicebot_check_duration_seconds_count", purpose="command") == 1
    assert metric(after, "process_cpu_seconds_total") > 0
    assert metric(after, "invoicebot_background_tasks", kind="request", state="running") == 0


async def test_an_unreachable_database_makes_the_bot_unhealthy_and_unready(
    world: SandboxWorld, tmp_path: Path
) -> None:
    async with fault_bot(world, tmp_path) as bot:
        good = bot.container.db
        broken = Database(f"sqlite+aiosqlite:///{tmp_path}/no/such/folder/bot.db")
        bot.container.db = broken
        try:
            health = await get(bot.server.url, "/healthz")
            ready = await get(bot.server.url, "/readyz")
            metrics = await get(bot.server.url, "/metrics")
        finally:
            bot.container.db = good
            await broken.dispose()
    assert (health.status_code, health.json()["database"]) == (503, "unreachable")
    assert (ready.status_code, ready.json()["database"]) == (503, "unreachable")
    assert metrics.status_code == 200 and "invoicebot_upstream_requests_total" in metrics.text


async def test_missing_settings_make_the_bot_unready_and_are_named_not_shown(
    world: SandboxWorld, tmp_path: Path
) -> None:
    settings = world.bot_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        portal_api_key=SecretStr(""),
        qbo_client_id="",
    )
    container = await bootstrap(settings)
    try:
        app = build_http_app(build_app(container), container)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            ready = await client.get("/readyz")
            health = await client.get("/healthz")
    finally:
        await container.aclose()
    assert ready.status_code == 503
    assert ready.json()["missing_settings"] == ["PORTAL_API_KEY", "QBO_CLIENT_ID"]
    assert world.emulator.bot_token not in ready.text
    assert health.status_code == 200  # alive, just not configured


async def test_health_reports_the_socket_mode_connection(
    world: SandboxWorld, tmp_path: Path
) -> None:
    emu = world.emulator
    settings = world.bot_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        slack_mode="socket",
        slack_app_token=SecretStr(emu.api.app_token),
        slack_signing_secret=SecretStr(""),
    )
    container = await bootstrap(settings)
    try:
        bolt = build_app(container)
        async with serving(build_http_app(bolt, container)) as url:
            down = await get(url, "/healthz")
            async with socket_mode(bolt, settings):
                for _ in range(100):
                    if emu.api.sockets.connected:
                        break
                    await asyncio.sleep(0.02)
                up = await get(url, "/healthz")
            after = await get(url, "/healthz")
    finally:
        await container.aclose()
    assert (down.status_code, down.json()["slack"]) == (503, "disconnected")
    assert (up.status_code, up.json()["slack"], up.json()["mode"]) == (200, "connected", "socket")
    assert (after.status_code, after.json()["slack"]) == (503, "disconnected")


def test_each_bot_counts_in_a_registry_of_its_own() -> None:
    first, second = Metrics(), Metrics()
    first.request("qbo", "ok")
    first.request("qbo", "ok")
    labels = {"system": "qbo", "outcome": "ok"}
    name = "invoicebot_upstream_requests_total"
    assert first.registry.get_sample_value(name, labels) == 2
    assert second.registry.get_sample_value(name, labels) is None
    text = first.exposition().decode()
    assert metric(text, name, **labels) == 2
    with pytest.raises(ValueError):
        first.upstream_requests.labels("only one label")
