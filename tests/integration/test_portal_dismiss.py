"""`POST /payments/{id}/dismiss` (contract 1.2): the sandbox against the contract, and the
adapter's `dismiss_payment`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import httpx
import pytest
import schemathesis
from pydantic import SecretStr

from sandbox.portal.connect import DEFAULT_API_KEY
from services.adapters.portal import PortalClient
from services.errors import NotFoundError
from services.models import TransferStatus
from tests.portal_world import World, running_world

SPEC = schemathesis.openapi.from_path(Path(__file__).parents[2] / "docs" / "portal-api.yaml")
KEY = SecretStr(DEFAULT_API_KEY)
HEADERS = {"X-API-Key": DEFAULT_API_KEY}
FAILED = "pay-11265-cb-4471"


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with running_world(matching=0) as w:
        yield w


async def test_dismiss_answers_as_the_contract_says(world: World) -> None:
    async with httpx.AsyncClient(base_url=f"{world.portal_url}/api/v1", headers=HEADERS) as http:
        listed = (await http.get("/invoices/11265/payments")).json()["payments"]
        assert [p["id"] for p in listed] == [FAILED]
        posted = (await http.get("/invoices/11267/payments")).json()["payments"][0]
        refused = await http.post(f"/payments/{posted['id']}/dismiss", json={})
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_failed"

        done = await http.post(
            f"/payments/{FAILED}/dismiss", json={}, headers={"Idempotency-Key": "k1"}
        )
        SPEC["/payments/{id}/dismiss"]["POST"].validate_response(done)
        again = await http.post(
            f"/payments/{FAILED}/dismiss", json={}, headers={"Idempotency-Key": "k1"}
        )
        assert again.json() == done.json() and again.headers.get("Idempotency-Replayed") == "true"
        assert (await http.post(f"/payments/{FAILED}/dismiss", json={})).status_code == 404
        assert (await http.get("/invoices/11265/payments")).json()["payments"] == []
        assert (await http.post(f"/payments/{FAILED}/dismiss", json={"x": 1})).status_code == 422


async def test_the_adapter_dismisses(world: World) -> None:
    async with aclosing(PortalClient(base_url=world.portal_url, api_key=KEY)) as portal:
        dismissed = await portal.dismiss_payment(FAILED, idempotency_key="fix-1-dismiss")
        assert dismissed.reference == "CB-4471" and dismissed.status is TransferStatus.FAILED
        assert await portal.list_invoice_payments("11265") == []
        replay = await portal.dismiss_payment(FAILED, idempotency_key="fix-1-dismiss")
        assert replay == dismissed
        with pytest.raises(NotFoundError):
            await portal.dismiss_payment(FAILED)
    assert [p.id for p in world.portal.dismissed] == [FAILED]
