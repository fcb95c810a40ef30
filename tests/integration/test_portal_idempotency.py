"""Contract v1.1 in the sandbox portal: Idempotency-Key on writes (same key, same answer, no
second run), 409 for a record already being resynced, the error precedence, the content
type of POST bodies, the payments look-up's ``deferred``; and the adapter's side of it: the
key sent when given, ``GET /integrations`` cached for a short time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from sandbox.portal.connect import DEFAULT_API_KEY
from sandbox.portal.ledger import Payment
from sandbox.scenarios import INTEGRATION_ID
from services.adapters.portal import PortalClient
from services.models import RecordType
from tests.portal_world import World, running_world

AUTH = {"X-API-Key": DEFAULT_API_KEY}
RESYNC = {"record_type": "invoice", "record_id": "11260"}


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with running_world(sync_duration=0.6, record_resync_seconds=0.4) as world:
        yield world


@pytest.fixture
async def http(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{world.portal_url}/api/v1", headers=AUTH) as client:
        yield client


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def test_the_same_key_gets_the_same_answer_and_no_second_resync(
    world: World, http: httpx.AsyncClient
) -> None:
    first = await http.post("/record-resyncs", json=RESYNC, headers=keyed("job-1"))
    again = await http.post("/record-resyncs", json=RESYNC, headers=keyed("job-1"))
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotency-Replayed"] == "true"
    assert "Idempotency-Replayed" not in first.headers
    assert len(world.portal.resyncs) == 1
    await world.portal.wait_idle()
    # Even once the resync has finished: still the first answer, still one resync.
    late = await http.post("/record-resyncs", json=RESYNC, headers=keyed("job-1"))
    assert late.status_code == 202 and late.json() == first.json()
    assert len(world.portal.resyncs) == 1


async def test_a_key_reused_for_another_request_is_refused(http: httpx.AsyncClient) -> None:
    await http.post("/record-resyncs", json=RESYNC, headers=keyed("job-2"))
    other = {"record_type": "company", "record_id": "58"}
    refused = await http.post("/record-resyncs", json=other, headers=keyed("job-2"))
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "idempotency_key_reused"


async def test_a_second_resync_of_a_busy_record_is_409_with_its_id(
    world: World, http: httpx.AsyncClient
) -> None:
    first = await http.post("/record-resyncs", json=RESYNC)
    second = await http.post("/record-resyncs", json=RESYNC, headers=keyed("job-3"))
    assert second.status_code == 409
    error = second.json()["error"]
    assert error["code"] == "resync_already_running" and error["resync_id"] == first.json()["id"]
    # A refusal is not remembered: the same key works once the first resync is done.
    await world.portal.wait_idle()
    third = await http.post("/record-resyncs", json=RESYNC, headers=keyed("job-3"))
    assert third.status_code == 202 and third.json()["id"] != first.json()["id"]


async def test_the_same_key_at_the_same_time_runs_once(
    world: World, http: httpx.AsyncClient
) -> None:
    answers = await asyncio.gather(
        *(http.post("/record-resyncs", json=RESYNC, headers=keyed("job-4")) for _ in range(5))
    )
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["id"] for a in answers}) == 1 and len(world.portal.resyncs) == 1


async def test_full_sync_replay_and_conflict(world: World, http: httpx.AsyncClient) -> None:
    path = f"/integrations/{INTEGRATION_ID}/syncs"
    body = {"sync_from": world.now.date().isoformat()}
    first = await http.post(path, json=body, headers=keyed("job-5"))
    replay = await http.post(path, json=body, headers=keyed("job-5"))
    other = await http.post(path, json=body, headers=keyed("job-6"))
    assert first.status_code == replay.status_code == 202 and replay.json() == first.json()
    assert other.status_code == 409 and other.json()["error"]["run_id"] == first.json()["id"]
    assert len(world.portal.runs) == 2  # the seeded history and this one


async def test_record_resync_lifecycle_moves_last_synced_at(
    world: World, http: httpx.AsyncClient
) -> None:
    before = (await http.get("/invoices/11260")).json()
    started = (await http.post("/record-resyncs", json=RESYNC)).json()
    assert started["status"] == "queued" and started["started_at"] is None
    await world.portal.wait_idle()
    done = (await http.get(f"/record-resyncs/{started['id']}")).json()
    assert done["status"] == "completed"
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]
    after = (await http.get("/invoices/11260")).json()
    assert after["last_synced_at"] >= done["started_at"] > before["last_synced_at"]
    assert after["balance"] == "50.00" and after["updated_at"] >= done["started_at"]
    # Again: nothing changes, last_synced_at moves, updated_at stays.
    again = (await http.post("/record-resyncs", json=RESYNC)).json()
    await world.portal.wait_idle()
    final = (await http.get("/invoices/11260")).json()
    assert final["updated_at"] == after["updated_at"]
    assert final["last_synced_at"] > after["last_synced_at"] and again["id"] != started["id"]


async def test_error_precedence(http: httpx.AsyncClient) -> None:
    wrong = {"X-API-Key": "wrong"}
    # 401 before 422 and 404.
    assert (await http.get("/invoices", params={"limit": 0}, headers=wrong)).status_code == 401
    assert (await http.get("/invoices/99999", headers=wrong)).status_code == 401
    # 415 before 422.
    answer = await http.post(
        "/record-resyncs", content=b"record_type=invoice", headers={"Content-Type": "text/plain"}
    )
    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "unsupported_media_type"
    # 422 before 404: a number that cannot be one, an unknown integration with a bad body.
    assert (await http.get("/invoices/" + "9" * 22)).status_code == 422
    answer = await http.post("/integrations/int-nope/syncs", json={"sync_from": "yesterday"})
    assert answer.status_code == 422
    answer = await http.post("/integrations/int-nope/syncs", json={"sync_from": "2025-01-01"})
    assert answer.status_code == 404


async def test_injected_503_says_nothing_was_done(world: World, http: httpx.AsyncClient) -> None:
    world.portal.inject(503)
    answer = await http.post("/record-resyncs", json=RESYNC)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "unavailable"
    assert world.portal.resyncs == {}


async def test_payment_lookup_defers_what_does_not_fit(
    world: World, http: httpx.AsyncClient
) -> None:
    now = datetime.now(UTC)
    numbers = sorted(world.portal.invoices)[:3]
    for index, number in enumerate(numbers):
        world.portal.payments[number] = [
            Payment(
                id=f"pay-{number}-{n}",
                invoice_number=number,
                reference=f"CB-{n}",
                amount=Decimal("1.00"),
                currency="USD",
                paid_at=now - timedelta(days=1),
                invoice_external_id=None,
                customer_id=None,
                transfer_status="posted",
            )
            for n in range(400 + index)
        ]
    answer = (await http.post("/payments/lookup", json={"numbers": numbers})).json()
    assert len(answer["payments"]) == 801 and answer["deferred"] == numbers[2:]
    assert {p["invoice_number"] for p in answer["payments"]} == set(numbers[:2])


# The adapter's side.
class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._real = httpx.AsyncHTTPTransport()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = await self._real.handle_async_request(request)
        await response.aread()
        return response


def _client(world: World, recorder: Recorder, **options: Any) -> PortalClient:
    transport = httpx.MockTransport(recorder)
    return PortalClient(
        base_url=world.portal_url,
        api_key=SecretStr(DEFAULT_API_KEY),
        transport=transport,
        **options,
    )


async def test_the_adapter_sends_the_key_it_is_given(world: World) -> None:
    recorder = Recorder()
    portal = _client(world, recorder)
    first = await portal.resync_record(RecordType.INVOICE, "11260", idempotency_key="job-7:rr")
    again = await portal.resync_record(RecordType.INVOICE, "11260", idempotency_key="job-7:rr")
    assert again == first and len(world.portal.resyncs) == 1
    run = await portal.start_sync(
        INTEGRATION_ID, sync_from=world.now.date(), idempotency_key="job-7:full"
    )
    assert run == await portal.start_sync(
        INTEGRATION_ID, sync_from=world.now.date(), idempotency_key="job-7:full"
    )
    await portal.resync_record(RecordType.COMPANY, "58")  # no key given: none sent
    keys = [r.headers.get("Idempotency-Key") for r in recorder.requests]
    assert keys == ["job-7:rr", "job-7:rr", "job-7:full", "job-7:full", None]
    await portal.aclose()


async def test_integrations_are_cached_for_a_short_time(world: World) -> None:
    recorder = Recorder()
    clock = [100.0]
    portal = _client(world, recorder, integrations_ttl=60.0, monotonic=lambda: clock[0])

    def asked() -> int:
        return sum(r.url.path == "/api/v1/integrations" for r in recorder.requests)

    first = await portal.list_integrations()
    clock[0] += 59
    assert await portal.list_integrations() == first and asked() == 1
    clock[0] += 2
    await portal.list_integrations()
    assert asked() == 2
    # A full sync started or seen finished: the integration's last sync may move.
    run = await portal.start_sync(INTEGRATION_ID, sync_from=world.now.date())
    await portal.list_integrations()
    assert asked() == 3
    await world.portal.wait_idle()
    assert (await portal.get_sync_run(run.id)).status.finished
    refreshed = await portal.list_integrations()
    assert asked() == 4
    assert refreshed[0].last_successful_sync_at != first[0].last_successful_sync_at
    await portal.aclose()
