"""`GET /payments`: the portal's payments in transfer order, filtered by status and time, page
by page; the adapter's `list_failed_payments` against the sandbox and against a replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from pydantic import SecretStr

from sandbox.portal.connect import DEFAULT_API_KEY
from sandbox.portal.payments import take_payment
from services.adapters.portal import PortalClient
from services.errors import UpstreamError
from tests.portal_world import World, running_world

SPEC = schemathesis.openapi.from_path(Path(__file__).parents[2] / "docs" / "portal-api.yaml")
KEY = SecretStr(DEFAULT_API_KEY)
HEADERS = {"X-API-Key": DEFAULT_API_KEY}


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with running_world(matching=0) as w:
        yield w


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def failures(world: World) -> None:
    """Three refused transfers (the seeded duplicate among them) and one that posts."""
    await take_payment(world.portal, "11264", Decimal("5.00"), reference="CB-8001")
    await take_payment(world.portal, "11270", Decimal("5.00"), reference="CB-8002")
    await take_payment(world.portal, "11260", Decimal("5.00"), reference="CB-8003")  # posts


async def test_pages_in_transfer_order_filtered_by_status(world: World) -> None:
    await failures(world)
    seen: list[dict[str, Any]] = []
    params: dict[str, str] = {"transfer_status": "failed", "limit": "2"}
    async with httpx.AsyncClient(base_url=f"{world.portal_url}/api/v1", headers=HEADERS) as http:
        while True:
            answer = await http.get("/payments", params=params)
            SPEC["/payments"]["GET"].validate_response(answer)
            seen += answer.json()["payments"]
            if answer.json()["next_cursor"] is None:
                break
            params["cursor"] = answer.json()["next_cursor"]
        assert [p["reference"] for p in seen] == ["CB-4471", "CB-8001", "CB-8002"]
        assert {p["transfer_status"] for p in seen} == {"failed"}
        stamps = [p["transferred_at"] for p in seen]
        assert stamps == sorted(stamps)

        later = {
            "transfer_status": "failed",
            "transferred_since": stamp(datetime.now(UTC) + timedelta(minutes=1)),
        }
        assert (await http.get("/payments", params=later)).json()["payments"] == []
        for bad in ("yesterday", "2026-11-30T00:00:00+01:00", "2026-13-01T00:00:00Z"):
            refused = await http.get("/payments", params={"transferred_since": bad})
            assert refused.status_code == 422, bad
        refused = await http.get("/payments", params={"transfer_status": "lost"})
        assert refused.status_code == 422


async def test_the_adapter_lists_failures_since_a_moment(world: World) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await failures(world)
    async with aclosing(PortalClient(base_url=world.portal_url, api_key=KEY)) as portal:
        failed = await portal.list_failed_payments(since=before)
        assert [p.reference for p in failed] == ["CB-4471", "CB-8001", "CB-8002"]
        assert failed[1].error == "Invoice already paid" and failed[1].invoice_number == "11264"
        assert failed[1].amount == Decimal("5.00")
        assert await portal.list_failed_payments(since=datetime.now(UTC) + timedelta(hours=1)) == []


def payment(ref: str, minute: int) -> dict[str, Any]:
    return {
        "id": f"pay-{ref}",
        "invoice_number": "11264",
        "reference": ref,
        "amount": "5.00",
        "currency": "USD",
        "paid_at": f"2026-11-30T08:{minute:02d}:00Z",
        "transfer_status": "failed",
        "transfer_error": "Invoice already paid",
        "transferred_at": f"2026-11-30T08:{minute + 1:02d}:00Z",
        "external_id": None,
        "invoice_external_id": "130",
    }


async def test_the_adapter_follows_every_page_of_a_replay() -> None:
    asked: list[httpx.QueryParams] = []

    def replay(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params)
        body: dict[str, Any]
        if "cursor" not in request.url.params:
            body = {"payments": [payment("CB-1", 1), payment("CB-2", 2)], "next_cursor": "abc"}
        else:
            body = {"payments": [payment("CB-3", 3)], "next_cursor": None}
        return httpx.Response(200, json=body)

    transport = httpx.MockTransport(replay)
    async with aclosing(
        PortalClient(base_url="http://portal.test", api_key=KEY, transport=transport)
    ) as portal:
        since = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
        failed = await portal.list_failed_payments(since=since)
    assert [p.reference for p in failed] == ["CB-1", "CB-2", "CB-3"]
    assert asked[0]["transfer_status"] == "failed"
    assert asked[0]["transferred_since"].startswith("2026-11-30T08:00:00")
    assert asked[1]["cursor"] == "abc"


async def test_a_portal_paging_in_circles_is_an_error_not_a_hang() -> None:
    def replay(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"payments": [payment("CB-1", 1)], "next_cursor": "x"})

    transport = httpx.MockTransport(replay)
    async with aclosing(
        PortalClient(base_url="http://portal.test", api_key=KEY, transport=transport)
    ) as portal:
        with pytest.raises(UpstreamError, match="repeat"):
            await portal.list_failed_payments(since=datetime(2026, 11, 30, tzinfo=UTC))
