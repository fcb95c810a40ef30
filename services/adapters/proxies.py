"""Outgoing proxies from the environment (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY).

httpx reads them only when it builds its own transport; the bot gives its clients one (to
time each request), so this transport does what httpx would: a request goes through the
proxy named for its scheme (else ALL_PROXY) unless NO_PROXY names its host, and straight
out otherwise. The environment is read once, when the transport is made (at start)."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping

import httpx


def bypassed(host: str, no_proxy: str) -> bool:
    """Whether NO_PROXY (comma separated) names ``host``: ``*``, the host itself, or a domain
    it is in (``example.com`` and ``.example.com`` both cover ``api.example.com``); a
    ``:port`` on an entry is ignored."""
    host = host.lower().strip("[]")
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        if entry.count(":") == 1:  # host:port (an IPv6 address has more colons)
            entry = entry.partition(":")[0]
        entry = entry.strip("[]").lstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


class EnvProxyTransport(httpx.AsyncBaseTransport):
    def __init__(self, proxies: Mapping[str, str] | None = None) -> None:
        """``proxies``: scheme -> proxy URL, and "no" -> NO_PROXY's list, as
        ``urllib.request.getproxies()`` reads them from the environment (the default)."""
        self.proxies = dict(urllib.request.getproxies() if proxies is None else proxies)
        self.direct = httpx.AsyncHTTPTransport()
        self._proxied: dict[str, httpx.AsyncHTTPTransport] = {}

    def route(self, url: httpx.URL) -> tuple[str | None, httpx.AsyncBaseTransport]:
        """The proxy a request to ``url`` goes through (None: straight out), and how."""
        proxy = self.proxies.get(url.scheme) or self.proxies.get("all")
        if not proxy or bypassed(url.host, self.proxies.get("no", "")):
            return None, self.direct
        if "://" not in proxy:
            proxy = f"http://{proxy}"
        if proxy not in self._proxied:
            self._proxied[proxy] = httpx.AsyncHTTPTransport(proxy=proxy)
        return proxy, self._proxied[proxy]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.route(request.url)[1].handle_async_request(request)

    async def aclose(self) -> None:
        await self.direct.aclose()
        for transport in self._proxied.values():
            await transport.aclose()
