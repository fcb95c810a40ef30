"""Shared set-up for the QuickBooks Online sandbox and adapter tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.qbo.app import QboState, create_qbo_app
from sandbox.server import serving
from services.adapters.qbo import QboClient
from services.ports import TokenStore
from tests.memory_tokens import MemoryTokenStore

NOW = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
CLIENT_ID = "ABq1sandboxclientid"
CLIENT_SECRET = "sandbox-client-secret-value"
BIG = Decimal("98765432109876.54")
"""More digits than a float holds: a float anywhere on the way changes it."""


def contract_state(**kwargs: Any) -> QboState:
    """The scenarios alone (Ids 1001-1005) plus D-1 (Id 1006) with an awkward amount."""
    state = QboState.seeded(NOW, matching=0, causes=False, **kwargs)
    state.add_invoice(
        "D-1",
        total=BIG,
        balance=Decimal("0.10"),
        customer_id="20",
        customer_name="Weiskopf Consulting",
        currency=None,
        created=NOW,
    )
    return state


@dataclass
class Sandbox:
    state: QboState
    url: str
    refresh_token: str

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/v1/tokens/bearer"

    def api(self, suffix: str) -> str:
        return f"{self.url}/v3/company/{self.state.realm_id}{suffix}"

    @property
    def api_calls(self) -> int:
        return sum(n for path, n in self.state.request_counts.items() if path.startswith("/v3/"))

    @property
    def token_calls(self) -> int:
        return self.state.request_counts["/oauth2/v1/tokens/bearer"]

    def client(self, store: TokenStore | None = None, **kwargs: Any) -> QboClient:
        options: dict[str, Any] = {
            "timeout": 2.0,
            "max_retries": 3,
            "retry_backoff": 0.001,
            "max_retry_wait": 0.02,
        }
        options.update(kwargs)
        return QboClient(
            base_url=self.url,
            token_url=self.token_url,
            realm_id=options.pop("realm_id", self.state.realm_id),
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
            token_store=store or MemoryTokenStore.from_refresh_token(self.refresh_token),
            **options,
        )

    async def access_token(self, http: httpx.AsyncClient) -> str:
        response = await http.post(
            self.token_url,
            auth=(CLIENT_ID, CLIENT_SECRET),
            data={"grant_type": "refresh_token", "refresh_token": self.refresh_token},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        self.refresh_token = body["refresh_token"]
        return str(body["access_token"])


class AppSwitch:
    """An ASGI app that forwards to whichever app a test plugged in: one loopback server
    serves a whole test module, and every test still gets a fresh QboState."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no app plugged in"
        await self.app(scope, receive, send)


@dataclass
class Server:
    url: str
    switch: AppSwitch

    def plug(self, state: QboState) -> Sandbox:
        refresh_token = state.register_client(CLIENT_ID, CLIENT_SECRET)
        self.switch.app = create_qbo_app(state)
        return Sandbox(state, self.url, refresh_token)


@asynccontextmanager
async def server() -> AsyncIterator[Server]:
    switch = AppSwitch()
    async with serving(switch) as url:
        yield Server(url, switch)


@asynccontextmanager
async def running(state: QboState) -> AsyncIterator[Sandbox]:
    refresh_token = state.register_client(CLIENT_ID, CLIENT_SECRET)
    async with serving(create_qbo_app(state)) as url:
        yield Sandbox(state, url, refresh_token)
