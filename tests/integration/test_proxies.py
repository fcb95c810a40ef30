"""The production adapters honour HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY: the bot
leaves its clients httpx's own transport (requests are timed by event hooks), so httpx reads
the environment itself. A loopback HTTP proxy sees the portal's requests, NO_PROXY sends
them straight out, and the latency histogram counts them either way. No MockTransport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr

from bot.metrics import Metrics
from bot.observe import timing_hooks
from services.adapters.portal.client import PortalClient

BODY = b'{"integrations": []}'


@dataclass
class Canned:
    """A loopback HTTP server that answers every request with ``BODY`` and keeps each
    request line (a proxy sees the absolute URL: ``GET http://host/path HTTP/1.1``)."""

    lines: list[str] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.lines.append(head.split(b"\r\n", 1)[0].decode())
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Canned, Canned]]:
    proxy, portal = Canned(), Canned()
    started = [await asyncio.start_server(s.handle, "127.0.0.1", 0) for s in (proxy, portal)]
    for server, canned in zip(started, (proxy, portal), strict=True):
        canned.port = server.sockets[0].getsockname()[1]
    yield proxy, portal
    for server in started:
        server.close()
        await server.wait_closed()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def production_portal(port: int, metrics: Metrics) -> PortalClient:
    """The portal client as bootstrap() makes it: no test transport, timed by event hooks."""
    return PortalClient(
        base_url=f"http://127.0.0.1:{port}",
        api_key=SecretStr("k"),
        event_hooks=timing_hooks(metrics, lambda _: "portal"),
        max_retries=0,
    )


def timed_requests(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value(
        "invoicebot_upstream_request_duration_seconds_count", {"system": "portal"}
    )
    return value or 0.0


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY"])
async def test_the_proxy_carries_the_requests(
    servers: tuple[Canned, Canned], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    proxy, portal = servers
    monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.port}")
    metrics = Metrics()
    client = production_portal(portal.port, metrics)
    assert await client.list_integrations() == []
    await client.aclose()
    assert proxy.lines == [f"GET http://127.0.0.1:{portal.port}/api/v1/integrations HTTP/1.1"]
    assert portal.lines == []
    assert timed_requests(metrics) == 1


async def test_no_proxy_goes_straight_out(
    servers: tuple[Canned, Canned], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, portal = servers
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    metrics = Metrics()
    client = production_portal(portal.port, metrics)
    assert await client.list_integrations() == []
    await client.aclose()
    assert proxy.lines == [] and portal.lines == ["GET /api/v1/integrations HTTP/1.1"]
    assert timed_requests(metrics) == 1
