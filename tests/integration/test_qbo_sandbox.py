"""The fake QuickBooks Online over loopback HTTP: query language, envelope, faults, OAuth."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio

from sandbox.qbo.app import FaultKind, QboState
from sandbox.qbo.state import INTUIT_TZ
from tests.qbo_support import (
    BIG,
    CLIENT_ID,
    CLIENT_SECRET,
    NOW,
    Sandbox,
    Server,
    server,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def loopback() -> AsyncIterator[Server]:
    async with server() as running_server:
        yield running_server


@pytest_asyncio.fixture(loop_scope="module")
async def sandbox(loopback: Server) -> AsyncIterator[Sandbox]:
    yield loopback.plug(QboState.seeded(NOW))


@pytest_asyncio.fixture(loop_scope="module")
async def http(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        token = await sandbox.access_token(client)
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


async def query(
    sandbox: Sandbox, http: httpx.AsyncClient, statement: str, *, status: int = 200
) -> dict[str, Any]:
    response = await http.get(
        sandbox.api("/query"), params={"query": statement, "minorversion": "75"}
    )
    assert response.status_code == status, response.text
    assert response.headers["intuit_tid"]
    body: dict[str, Any] = json.loads(response.text, parse_float=Decimal)
    return body


def numbers(body: dict[str, Any]) -> list[str]:
    return [inv["DocNumber"] for inv in body["QueryResponse"].get("Invoice", [])]


# -- the query language --------------------------------------------------------------
async def test_query_by_doc_number_has_the_intuit_envelope(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    body = await query(sandbox, http, "SELECT * FROM Invoice WHERE DocNumber = '11260'")
    response = body["QueryResponse"]
    assert response["startPosition"] == 1 and response["maxResults"] == 1
    (invoice,) = response["Invoice"]
    assert invoice["CustomerRef"] == {"value": "58", "name": "Best Tackle"}
    assert invoice["Balance"] == Decimal("50.00") and invoice["TotalAmt"] == Decimal("50.00")
    assert invoice["CurrencyRef"]["value"] == "USD"
    assert invoice["MetaData"]["LastUpdatedTime"].endswith("-08:00")
    assert {"Line", "LinkedTxn", "SyncToken", "EmailStatus", "TxnDate", "DueDate"} <= set(invoice)
    assert body["time"].endswith("-08:00")


async def test_nothing_matching_leaves_the_invoice_key_out(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    body = await query(sandbox, http, "select * from invoice where DocNumber = 'no-such'")
    assert body["QueryResponse"] == {}


async def test_count(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    body = await query(sandbox, http, "SELECT count(*) FROM Invoice WHERE Balance > '0'")
    open_count = sum(1 for inv in sandbox.state.invoices.all_by_id() if inv.balance > 0)
    assert body["QueryResponse"] == {"totalCount": open_count}


async def test_paging_is_stable_and_ordered_by_id(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    seen: list[int] = []
    start = 1
    while True:
        body = await query(
            sandbox, http, f"SELECT * FROM Invoice STARTPOSITION {start} MAXRESULTS 120"
        )
        page = [int(inv["Id"]) for inv in body["QueryResponse"].get("Invoice", [])]
        seen += page
        if len(page) < 120:
            break
        start += 120
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == len(sandbox.state.invoices)
    default = await query(sandbox, http, "SELECT * FROM Invoice")
    assert len(default["QueryResponse"]["Invoice"]) == 100  # MAXRESULTS defaults to 100


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("DocNumber IN ('11260', '11263', 'nope')", ["11260", "11263"]),
        ("DOCNUMBER in ('11264')", ["11264"]),
        ("DocNumber = '11260' AND Balance >= '50'", ["11260"]),
        ("DocNumber = '11260' AND Balance < '50'", []),
        ("DocNumber IN ('11260', '11264') AND Balance <= '0'", ["11264"]),
        ("DocNumber LIKE '1126%' AND Balance = '0'", ["11264"]),
    ],
)
async def test_conditions(
    sandbox: Sandbox, http: httpx.AsyncClient, where: str, expected: list[str]
) -> None:
    assert numbers(await query(sandbox, http, f"SELECT * FROM Invoice WHERE {where}")) == expected


async def test_last_updated_time_compares_as_an_instant(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    since = NOW - timedelta(hours=6)
    recent = {"11260", "11261", "11263"}  # modified 1, 5 and 3 hours ago
    for text in (
        since.isoformat(),
        since.strftime("%Y-%m-%dT%H:%M:%SZ"),
        since.astimezone(INTUIT_TZ).isoformat(),
    ):
        body = await query(
            sandbox, http, f"SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= '{text}'"
        )
        assert set(numbers(body)) == recent


async def test_order_by_desc_and_txn_date(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    body = await query(
        sandbox,
        http,
        "SELECT * FROM Invoice WHERE Balance > '500' ORDERBY Balance DESC MAXRESULTS 1000",
    )
    balances = [inv["Balance"] for inv in body["QueryResponse"]["Invoice"]]
    assert balances == sorted(balances, reverse=True) and min(balances) > 500
    day = (NOW - timedelta(hours=3)).astimezone(INTUIT_TZ).date().isoformat()
    body = await query(sandbox, http, f"SELECT * FROM Invoice WHERE TxnDate = '{day}'")
    assert "11263" in numbers(body)


async def test_quotes_are_escaped_with_a_backslash(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    sandbox.state.add_invoice("O'Neil-1", total=Decimal("10"))
    body = await query(sandbox, http, "SELECT * FROM Invoice WHERE DocNumber = 'O\\'Neil-1'")
    assert numbers(body) == ["O'Neil-1"]


async def test_post_with_the_statement_as_body(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    response = await http.post(
        sandbox.api("/query?minorversion=75"),
        content=b"SELECT * FROM Invoice WHERE DocNumber = '11261'",
        headers={"Content-Type": "application/text"},
    )
    assert response.status_code == 200
    assert [i["DocNumber"] for i in response.json()["QueryResponse"]["Invoice"]] == ["11261"]


@pytest.mark.parametrize(
    "statement",
    [
        "SELEC * FROM Invoice",
        "SELECT * FROM Nonsense",
        "SELECT * FROM Customer",
        "SELECT * FROM Invoice WHERE Foo = '1'",
        "SELECT * FROM Invoice WHERE DocNumber = '1' OR DocNumber = '2'",
        "SELECT * FROM Invoice WHERE DocNumber = 11260",
        "SELECT * FROM Invoice WHERE DocNumber = '11260",
        "SELECT * FROM Invoice WHERE Balance > 'lots'",
        "SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime > 'yesterday'",
        "SELECT * FROM Invoice WHERE DocNumber IN ()",
        "SELECT * FROM Invoice MAXRESULTS 1001",
        "SELECT * FROM Invoice STARTPOSITION 0",
        "SELECT DocNumber FROM Invoice",
        "SELECT * FROM Invoice ORDERBY Nope",
        "SELECT * FROM Invoice;",
        "",
    ],
)
async def test_bad_statements_get_a_validation_fault(
    sandbox: Sandbox, http: httpx.AsyncClient, statement: str
) -> None:
    body = await query(sandbox, http, statement, status=400)
    (error,) = body["Fault"]["Error"]
    assert body["Fault"]["type"] == "ValidationFault"
    assert error["code"] == "4000" and error["Message"] and error["Detail"]


async def test_read_by_id_and_object_not_found(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    invoice = sandbox.state.invoice("11262")
    response = await http.get(sandbox.api(f"/invoice/{invoice.id}"), params={"minorversion": 75})
    assert response.status_code == 200
    assert response.json()["Invoice"]["DocNumber"] == "11262"
    response = await http.get(sandbox.api("/invoice/999999"))
    assert response.status_code == 400
    assert response.json()["Fault"]["Error"][0]["code"] == "610"


async def test_amounts_are_exact_json_numbers(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    sandbox.state.add_invoice("BIG-1", total=BIG, balance=Decimal("0.10"))
    response = await http.get(
        sandbox.api("/query"), params={"query": "SELECT * FROM Invoice WHERE DocNumber = 'BIG-1'"}
    )
    assert '"TotalAmt":98765432109876.54' in response.text and '"Balance":0.10' in response.text


async def test_update_invoice_moves_sync_token_and_last_updated(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    before = sandbox.state.invoice_json("11262")
    sandbox.state.update_invoice("11262", balance=Decimal("10.00"), when=NOW)
    body = await query(
        sandbox,
        http,
        f"SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= '{NOW.isoformat()}'",
    )
    (after,) = body["QueryResponse"]["Invoice"]
    assert after["DocNumber"] == "11262" and after["Balance"] == Decimal("10.00")
    assert int(after["SyncToken"]) == int(before["SyncToken"]) + 1
    assert after["LinkedTxn"][0]["TxnType"] == "Payment"
    sandbox.state.delete_invoice("11262")
    assert (
        numbers(await query(sandbox, http, "SELECT * FROM Invoice WHERE DocNumber = '11262'")) == []
    )


# -- authentication ------------------------------------------------------------------
async def test_missing_and_expired_tokens_get_the_gateway_fault(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    url = sandbox.api("/query")
    params = {"query": "SELECT * FROM Invoice"}
    response = await http.get(url, params=params, headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.json()["fault"]["error"][0]["code"] == "3200"
    assert response.json()["fault"]["type"] == "AUTHENTICATION"
    sandbox.state.expire_access_tokens()
    response = await http.get(url, params=params)
    assert response.status_code == 401 and response.headers["intuit_tid"]
    assert response.json()["fault"]["error"][0]["detail"].startswith("Token expired")


async def test_another_realm_is_forbidden(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    response = await http.get(
        f"{sandbox.url}/v3/company/123/query", params={"query": "SELECT * FROM Invoice"}
    )
    assert response.status_code == 403
    assert response.json()["Fault"]["type"] == "AuthorizationFault"
    assert response.json()["Fault"]["Error"][0]["code"] == "3100"


async def test_access_tokens_expire_after_the_ttl(loopback: Server) -> None:
    clock = [NOW]
    box = loopback.plug(QboState.seeded(NOW, matching=0, clock=lambda: clock[0]))
    box.state.knobs.access_token_ttl = 60
    async with httpx.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {await box.access_token(http)}"}
        url, params = box.api("/query"), {"query": "SELECT count(*) FROM Invoice"}
        assert (await http.get(url, params=params, headers=headers)).status_code == 200
        clock[0] += timedelta(seconds=61)
        assert (await http.get(url, params=params, headers=headers)).status_code == 401


async def refresh(box: Sandbox, http: httpx.AsyncClient, token: str, **kw: Any) -> httpx.Response:
    return await http.post(
        box.token_url,
        auth=kw.get("auth", (CLIENT_ID, CLIENT_SECRET)),
        data={"grant_type": "refresh_token", "refresh_token": token},
    )


async def test_refresh_tokens_rotate_and_old_ones_are_invalid_grant(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as http:
        first = await refresh(sandbox, http, sandbox.refresh_token)
        body = first.json()
        assert first.status_code == 200 and first.headers["intuit_tid"]
        assert body["token_type"] == "bearer" and body["expires_in"] == 3600
        assert body["x_refresh_token_expires_in"] == 8640000
        assert body["refresh_token"] != sandbox.refresh_token
        stale = await refresh(sandbox, http, sandbox.refresh_token)
        assert stale.status_code == 400 and stale.json() == {"error": "invalid_grant"}
        assert (await refresh(sandbox, http, body["refresh_token"])).status_code == 200
        wrong = await refresh(sandbox, http, body["refresh_token"], auth=(CLIENT_ID, "nope"))
        assert wrong.status_code == 401 and wrong.json() == {"error": "invalid_client"}


async def test_without_rotation_the_same_refresh_token_comes_back(sandbox: Sandbox) -> None:
    sandbox.state.knobs.rotate_refresh_tokens = False
    async with httpx.AsyncClient() as http:
        for _ in range(2):
            response = await refresh(sandbox, http, sandbox.refresh_token)
            assert response.json()["refresh_token"] == sandbox.refresh_token


async def test_revoked_connection(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    sandbox.state.revoke(CLIENT_ID)
    response = await http.get(sandbox.api("/query"), params={"query": "SELECT * FROM Invoice"})
    assert response.status_code == 401
    assert (await refresh(sandbox, http, sandbox.refresh_token)).json() == {
        "error": "invalid_grant"
    }
    token = sandbox.state.register_client(CLIENT_ID, CLIENT_SECRET)  # a person reconnects
    assert (await refresh(sandbox, http, token)).status_code == 200


# -- throttling and faults ---------------------------------------------------------
async def test_requests_per_minute_are_throttled(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    sandbox.state.knobs.max_per_minute = 3
    params = {"query": "SELECT count(*) FROM Invoice"}
    statuses = [
        (await http.get(sandbox.api("/query"), params=params)).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    response = await http.get(sandbox.api("/query"), params=params)
    assert "retry-after" not in response.headers
    error = response.json()["Fault"]["Error"][0]
    assert error["code"] == "3001" and "ThrottleExceeded" in error["Message"]
    sandbox.state.knobs.throttle_as_xml = True
    sandbox.state.knobs.retry_after = 7
    response = await http.get(sandbox.api("/query"), params=params)
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert response.text.startswith("<?xml") and 'code="3001"' in response.text


async def test_concurrent_requests_over_the_limit_are_throttled(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    sandbox.state.knobs.max_concurrent = 2
    sandbox.state.knobs.latency = 0.2
    params = {"query": "SELECT count(*) FROM Invoice"}
    responses = await asyncio.gather(
        *(http.get(sandbox.api("/query"), params=params) for _ in range(3))
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 429]
    assert sandbox.state.throttle.peak_in_flight == 2


async def test_queued_faults(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    sandbox.state.knobs.timeout_seconds = 0.2
    sandbox.state.inject(
        FaultKind.SERVER_ERROR,
        "503",
        FaultKind.FAULT_IN_200,
        FaultKind.EXPIRED_TOKEN,
        FaultKind.TIMEOUT,
    )
    url, params = sandbox.api("/query"), {"query": "SELECT count(*) FROM Invoice"}
    assert (await http.get(url, params=params)).status_code == 500
    assert (await http.get(url, params=params)).status_code == 503
    inside = await http.get(url, params=params)
    assert inside.status_code == 200 and inside.json()["Fault"]["type"] == "SystemFault"
    expired = await http.get(url, params=params)
    assert expired.status_code == 401 and "fault" in expired.json()
    assert (await http.get(url, params=params)).status_code == 401  # the token really expired
    http.headers["Authorization"] = f"Bearer {await sandbox.access_token(http)}"
    assert (await http.get(url, params=params)).status_code == 504
    assert (await http.get(url, params=params)).status_code == 200


async def test_a_dropped_connection(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    sandbox.state.inject(FaultKind.DROP)
    with pytest.raises(httpx.RemoteProtocolError):
        await http.get(sandbox.api("/query"), params={"query": "SELECT * FROM Invoice"})
    response = await http.get(sandbox.api("/query"), params={"query": "SELECT * FROM Invoice"})
    assert response.status_code == 200


async def test_requests_are_counted_per_path(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    for _ in range(3):
        await query(sandbox, http, "SELECT count(*) FROM Invoice")
    assert sandbox.state.request_counts[f"/v3/company/{sandbox.state.realm_id}/query"] == 3
    assert sandbox.token_calls == 1
    assert list(sandbox.state.queries)[-1] == "SELECT count(*) FROM Invoice"
