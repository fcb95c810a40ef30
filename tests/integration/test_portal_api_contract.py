"""The sandbox portal honours docs/portal-api.yaml: schemathesis generates requests from the
document (valid and invalid ones) and checks every answer against it, over loopback HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from sandbox.portal.connect import DEFAULT_API_KEY
from sandbox.scenarios import INTEGRATION_ID
from tests.portal_world import World, running_world

SPEC = Path(__file__).resolve().parents[2] / "docs" / "portal-api.yaml"
AUTH = {"X-API-Key": DEFAULT_API_KEY}

schema = schemathesis.openapi.from_path(SPEC)
schema.config.generation.update(max_examples=12, deterministic=True)


class WorldThread:
    """The fake QBO and portal on their own event loop in a thread (schemathesis calls are
    blocking ``requests`` calls, so the servers cannot share the test's loop)."""

    def __init__(self) -> None:
        self.world: World | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with running_world(sync_duration=0.05, record_resync_seconds=0.02) as world:
            self.world = world
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> World:
        self._thread.start()
        assert self._ready.wait(10), "the sandbox did not start"
        assert self.world is not None
        return self.world

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture(scope="module")
def fuzzed_api() -> Iterator[str]:
    """One sandbox for every generated request (they change it: syncs, resyncs)."""
    with WorldThread() as world:
        yield f"{world.portal_url}/api/v1"


@pytest.fixture
def world() -> Iterator[World]:
    """A freshly seeded sandbox."""
    with WorldThread() as world:
        yield world


@pytest.fixture
def api(world: World) -> str:
    return f"{world.portal_url}/api/v1"


def test_the_document_is_valid_openapi_3_1() -> None:
    assert schema.raw_schema["openapi"].startswith("3.1")
    schema.validate()


KEYS_SENT: dict[str, str] = {}
"""Idempotency-Key -> the request first sent with it (the generator reuses keys)."""


def _refused_by_meaning(case: schemathesis.Case[Any]) -> bool:
    """Schema-valid requests the contract refuses with 422 for what they mean: a cursor this
    API never returned, a sync date in the future, an Idempotency-Key already used for a
    different request."""
    if "cursor" in (case.query or {}):
        return True
    headers: dict[str, str] = dict(case.headers or {})
    key = headers.get("Idempotency-Key")
    if key is not None:
        request = f"{case.method} {case.formatted_path} {case.body!r}"
        if KEYS_SENT.setdefault(key, request) != request:
            return True
    body = case.body
    sync_from = body.get("sync_from") if isinstance(body, dict) else None
    return isinstance(sync_from, str) and sync_from > datetime.now(UTC).date().isoformat()


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_conforms(case: schemathesis.Case[Any], fuzzed_api: str) -> None:
    excluded: list[schemathesis.CheckFunction] = []
    if _refused_by_meaning(case):
        excluded.append(positive_data_acceptance)
    case.call_and_validate(base_url=fuzzed_api, headers=AUTH, excluded_checks=excluded, timeout=10)


def _validate(method: str, path: str, response: requests.Response) -> None:
    schema[path][method].validate_response(response)


def test_seeded_answers_conform(api: str) -> None:
    with requests.Session() as http:
        http.headers.update(AUTH)
        answer = http.get(f"{api}/invoices/11260")
        _validate("GET", "/invoices/{number}", answer)
        assert answer.json()["balance"] == "40.00"
        assert answer.json()["customer"] == {"id": "58", "name": "Best Tackle"}

        answer = http.post(f"{api}/invoices/lookup", json={"numbers": ["11260", "11263", "11260"]})
        _validate("POST", "/invoices/lookup", answer)
        assert [i["number"] for i in answer.json()["invoices"]] == ["11260"]
        assert answer.json()["missing"] == ["11263"]

        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = {"status": "open", "limit": "7", **({"cursor": cursor} if cursor else {})}
            answer = http.get(f"{api}/invoices", params=params)
            _validate("GET", "/invoices", answer)
            seen += [i["number"] for i in answer.json()["invoices"]]
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                break
        assert seen == sorted(seen) and len(seen) == len(set(seen)) and "11260" in seen

        answer = http.get(f"{api}/companies/58")  # contract 1.2
        _validate("GET", "/companies/{company_id}", answer)
        assert answer.json()["name"] == "Best Tackle"
        answer = http.get(f"{api}/contacts/58")
        _validate("GET", "/contacts/{contact_id}", answer)
        assert answer.json()["company_id"] == "58"
        answer = http.get(f"{api}/contacts/999999")
        _validate("GET", "/contacts/{contact_id}", answer)
        assert answer.status_code == 404
        answer = http.get(f"{api}/integrations/{INTEGRATION_ID}")
        _validate("GET", "/integrations/{integration_id}", answer)
        assert answer.json()["connected_at"] < answer.json()["last_successful_sync_at"]


def test_errors_conform(api: str, world: World) -> None:
    with requests.Session() as http:
        answer = http.get(f"{api}/integrations")
        assert answer.status_code == 401
        _validate("GET", "/integrations", answer)
        assert answer.json()["error"]["code"] == "unauthorized"

        http.headers.update(AUTH)
        answer = http.get(f"{api}/invoices", params={"limit": "1001"})
        assert answer.status_code == 422
        _validate("GET", "/invoices", answer)

        answer = http.get(f"{api}/invoices", params={"cursor": "bm9wZQ"})
        assert answer.status_code == 422

        answer = http.post(f"{api}/record-resyncs", json={"record_type": "invoice", "x": 1})
        assert answer.status_code == 422
        _validate("POST", "/record-resyncs", answer)

        world.portal.sync_duration = 1.0
        path = f"{api}/integrations/{INTEGRATION_ID}/syncs"
        first = http.post(path, json={"sync_from": "2024-01-01"})
        second = http.post(path, json={"sync_from": "2024-01-01"})
        world.portal.sync_duration = 0.05
        assert first.status_code == 202, first.text
        assert first.headers["Location"] == f"/api/v1/sync-runs/{first.json()['id']}"
        _validate("POST", "/integrations/{integration_id}/syncs", first)
        assert second.status_code == 409
        _validate("POST", "/integrations/{integration_id}/syncs", second)
        assert second.json()["error"]["run_id"] == first.json()["id"]

        world.portal.inject(429, retry_after=3)
        answer = http.get(f"{api}/invoices/11260")
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "3"
        _validate("GET", "/invoices/{number}", answer)
