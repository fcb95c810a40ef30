"""`invoicebot portal-check`: every check passes against the sandbox portal, and a portal
that breaks the contract fails the check that names what it broke. The broken portals are
the sandbox behind a transport that spoils its answers on the way (loopback only)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from sandbox.portal.connect import DEFAULT_API_KEY
from services.adapters.portal_check import CheckResult, Outcome, check_portal, repository_contract
from tests.portal_world import World, running_world

Spoil = Callable[[httpx.Request, int, Any], tuple[int, Any]]
"""(request, status, decoded body) -> the (status, body) a broken portal answers instead."""


class Spoiling(httpx.AsyncBaseTransport):
    """The real answers over loopback, passed through ``spoil``."""

    def __init__(self, spoil: Spoil, *, drop_headers: tuple[str, ...] = ()) -> None:
        self.spoil = spoil
        self.drop_headers = drop_headers
        self.real = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for name in self.drop_headers:  # the portal never sees them
            request.headers.pop(name, None)
        response = await self.real.handle_async_request(request)
        raw = await response.aread()
        await response.aclose()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        status, body = self.spoil(request, response.status_code, body)
        kept = ("x-request-id", "location", "retry-after", "idempotency-replayed")
        headers = {k: v for k, v in response.headers.items() if k.lower() in kept}
        return httpx.Response(status, json=body, headers=headers)

    async def aclose(self) -> None:
        await self.real.aclose()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with running_world(matching=40, sync_duration=0.4, record_resync_seconds=0.3) as world:
        yield world


async def run_check(
    world: World,
    spoil: Spoil | None = None,
    write_invoice: str | None = None,
    transport: Spoiling | None = None,
) -> dict[str, CheckResult]:
    transport = Spoiling(spoil) if spoil is not None else transport
    results = await check_portal(
        base_url=world.portal_url,
        api_key=DEFAULT_API_KEY,
        write_invoice=write_invoice,
        transport=transport,
        page_size=7,  # several pages even in a small world
        poll_seconds=0.05,
        finish_timeout=20,
    )
    if transport is not None:
        await transport.aclose()
    named = {r.name: r for r in results}
    assert len(named) == len(results), "check names are unique"
    return named


def failed(results: dict[str, CheckResult]) -> dict[str, str]:
    return {name: r.detail for name, r in results.items() if r.outcome is Outcome.FAIL}


async def test_the_sandbox_passes_every_check(world: World) -> None:
    results = await run_check(world, write_invoice="11260")
    assert failed(results) == {}
    skipped = {name for name, r in results.items() if r.outcome is Outcome.SKIP}
    assert skipped == set()
    assert "write.full_sync_conflict" in results and "invoices.paging" in results
    assert {"write.dismiss_not_failed", "write.dismiss_unknown"} <= results.keys()
    assert world.portal.dismissed == []  # only refusals are tried
    assert "pages" in results["invoices.paging"].detail
    line = results["invoices.paging"].line()
    assert line.startswith("PASS invoices.paging: expected pages of at most 7")


async def test_read_only_by_default(world: World) -> None:
    results = await run_check(world)
    assert failed(results) == {}
    assert not [name for name in results if name.startswith("write.")]
    assert world.portal.resyncs == {} and len(world.portal.runs) == 1  # the seeded history


async def test_a_1_1_portal_passes_without_embedded_payments(world: World) -> None:
    world.portal.embeds_payments = False  # GET /invoices/{number}?include=payments: 422
    results = await run_check(world)
    assert failed(results) == {}
    assert "contract 1.1" in results["payments.embedded"].detail


MONEY = ("total", "balance", "amount", "balance_before", "balance_after")


def _numbers_for_amounts(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: float(v) if k in MONEY and isinstance(v, str) else _numbers_for_amounts(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_numbers_for_amounts(v) for v in value]
    return value


async def test_amounts_as_json_numbers_fail_the_schema_check(world: World) -> None:
    results = await run_check(world, lambda req, status, body: (status, _numbers_for_amounts(body)))
    problems = failed(results)
    assert "invoices.schema" in problems
    assert 'is not of type "string"' in problems["invoices.schema"]
    assert ".total" in problems["invoices.schema"] or ".balance" in problems["invoices.schema"]
    assert results["invoices.schema"].line().startswith("FAIL invoices.schema: expected ")
    assert "auth.wrong_key" not in problems and "invoices.paging" not in problems


def _without_updated_at(request: httpx.Request, status: int, body: Any) -> tuple[int, Any]:
    if isinstance(body, dict) and isinstance(body.get("invoices"), list):
        body["invoices"] = [
            {k: v for k, v in i.items() if k != "updated_at"} for i in body["invoices"]
        ]
    return status, body


async def test_a_missing_required_field_fails_the_schema_check(world: World) -> None:
    problems = failed(await run_check(world, _without_updated_at))
    assert "invoices.schema" in problems and "updated_at" in problems["invoices.schema"]


def _cursor_repeats(request: httpx.Request, status: int, body: Any) -> tuple[int, Any]:
    cursor = request.url.params.get("cursor")
    if request.url.path.endswith("/invoices") and cursor and isinstance(body, dict):
        body["next_cursor"] = cursor  # page 2 points back at itself, forever
    return status, body


async def test_paging_that_repeats_a_cursor_fails_the_paging_check(world: World) -> None:
    problems = failed(await run_check(world, _cursor_repeats))
    assert "invoices.paging" in problems and "cursor already seen" in problems["invoices.paging"]
    assert "invoices.schema" not in problems


def _500_for_a_bad_key(request: httpx.Request, status: int, body: Any) -> tuple[int, Any]:
    if status == 401:
        return 500, {"error": {"code": "internal_error", "message": "KeyError: 'api_key'"}}
    return status, body


async def test_a_500_for_a_bad_key_fails_the_auth_checks(world: World) -> None:
    problems = failed(await run_check(world, _500_for_a_bad_key))
    assert {"auth.wrong_key", "auth.missing_key", "errors.precedence"} <= set(problems)
    assert "answered 500, not 401" in problems["auth.wrong_key"]
    assert "invoices.schema" not in problems


async def test_a_portal_that_ignores_idempotency_keys_fails_the_replay_checks(
    world: World,
) -> None:
    ignoring = Spoiling(lambda req, status, body: (status, body), drop_headers=("Idempotency-Key",))
    problems = failed(await run_check(world, write_invoice="11260", transport=ignoring))
    assert {
        "write.record_resync_replay",
        "write.idempotency_key_reused",
        "write.full_sync_replay",
    } <= set(problems)
    assert "answered 409, not 202" in problems["write.record_resync_replay"]
    assert "write.record_resync_conflict" not in problems


async def test_a_portal_that_dismisses_anything_fails_the_dismiss_checks(world: World) -> None:
    def dismissing(request: httpx.Request, status: int, body: Any) -> tuple[int, Any]:
        return (200, {}) if request.url.path.endswith("/dismiss") else (status, body)

    problems = failed(await run_check(world, dismissing, write_invoice="11260"))
    assert "answered 200, not 409" in problems["write.dismiss_not_failed"]
    assert "answered 200, not 404" in problems["write.dismiss_unknown"]


async def test_an_unreachable_portal_fails_at_once() -> None:
    results = await check_portal(base_url="http://127.0.0.1:9", api_key="k", timeout=2)
    assert [(r.name, r.outcome) for r in results] == [("portal.reachable", Outcome.FAIL)]


def test_every_schema_example_in_the_contract_conforms() -> None:
    contract = repository_contract()
    assert contract.version == "1.4.0"
    for name in contract.schema_names():
        examples = contract.examples(name)
        assert examples, f"{name} has no example"
        for example in examples:
            assert contract.problems(name, example) == [], (name, example)
