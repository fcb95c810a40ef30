"""The production adapters honour HTTPS_PROXY / HTTP_PROXY / NO_PROXY (httpx reads them only
for a transport of its own; the bot gives its clients one): a loopback HTTP proxy sees the
portal's requests, and NO_PROXY sends them straight out. No MockTransport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from pydantic import SecretStr

from bot.metrics import Metrics
from bot.observe import timed
from services.adapters.portal.client import PortalClient
from services.adapters.proxies import EnvProxyTransport, bypassed

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


def production_portal(port: int) -> PortalClient:
    """The portal client as bootstrap() makes it: no test transport, so ``timed(None, ...)``."""
    return PortalClient(
        base_url=f"http://127.0.0.1:{port}",
        api_key=SecretStr("k"),
        transport=timed(None, Metrics(), lambda _: "portal"),
        max_retries=0,
    )


async def test_http_proxy_carries_the_requests(
    servers: tuple[Canned, Canned], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, portal = servers
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    client = production_portal(portal.port)
    assert await client.list_integrations() == []
    await client.aclose()
    assert proxy.lines == [f"GET http://127.0.0.1:{portal.port}/api/v1/integrations HTTP/1.1"]
    assert portal.lines == []


async def test_no_proxy_goes_straight_out(
    servers: tuple[Canned, Canned], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, portal = servers
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    client = production_portal(portal.port)
    assert await client.list_integrations() == []
    await client.aclose()
    assert proxy.lines == [] and portal.lines == ["GET /api/v1/integrations HTTP/1.1"]


def test_each_scheme_has_its_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("HTTP_PROXY", "proxy.corp:8080")
    monkeypatch.setenv("NO_PROXY", ".internal.example, 10.0.0.7:8081")
    transport = EnvProxyTransport()
    route = transport.route
    assert route(httpx.URL("https://quickbooks.api.intuit.com/v3"))[0] == "http://proxy.corp:3128"
    assert route(httpx.URL("http://portal.example/api"))[0] == "http://proxy.corp:8080"
    assert route(httpx.URL("https://billing.internal.example/api"))[0] is None
    assert route(httpx.URL("http://10.0.0.7:8081/api"))[0] is None
    assert EnvProxyTransport(proxies={}).route(httpx.URL("https://x.example"))[0] is None
    assert bypassed("anything", "*") and not bypassed("example.com", "ample.com")
