"""Review fixes in the watch's pure parts: one id for a change whatever delivered it, a
legacy event without its time refused, CDC's 1,000-object cap (the adapter splits a full
answer by entity and says when one entity alone fills it; the fake QuickBooks caps its
answers), and watch messages with money still to account for and times in the reader's
zone."""

from __future__ import annotations

import json
import re
from datetime import UTC, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import parse_qs, urlparse

import pytest
from starlette.requests import Request

from commands.watch_blocks import cdc_too_old, change_alert, collision_message, resolved_alert
from sandbox.qbo import cdc as sandbox_cdc
from services.adapters.qbo.changes import CDC_MAX, QboChanges, parse_cdc
from services.adapters.qbo.client import QboClient
from services.causes import RiskKind
from services.followups import FollowUp
from services.watch import CdcTruncated
from services.watch_events import MalformedDelivery, parse_delivery
from tests.diagnosis_support import NOW, acct, comparison, mirror

LAST_UPDATED = "2026-12-06T14:42:19-08:00"


def legacy(last_updated: str | None) -> bytes:
    entity: dict[str, Any] = {"name": "Invoice", "id": "130", "operation": "Update"}
    if last_updated is not None:
        entity["lastUpdated"] = last_updated
    note = {"realmId": "1", "dataChangeEvent": {"entities": [entity]}}
    return json.dumps({"eventNotifications": [note]}).encode()


def cdc_body(counts: dict[str, int]) -> dict[str, Any]:
    parts = [
        {entity: [{"Id": str(n), "MetaData": {"LastUpdatedTime": LAST_UPDATED}} for n in range(k)]}
        for entity, k in counts.items()
    ]
    return {"CDCResponse": [{"QueryResponse": parts}]}


def test_a_change_has_one_id_from_a_webhook_of_either_format_or_cdc() -> None:
    [from_legacy] = parse_delivery(legacy("2026-12-06T14:42:19.482-0800"), realm_id="1").ours
    cloud = [
        {
            "specversion": "1.0",
            "id": "ev-9",
            "type": "qbo.invoice.updated.v1",
            "time": "2026-12-06T22:42:19.482Z",
            "intuitentityid": "130",
            "intuitaccountid": "1",
        }
    ]
    [from_cloud] = parse_delivery(json.dumps(cloud).encode(), realm_id="1").ours
    body = {"CDCResponse": [{"QueryResponse": [{"Invoice": [{"Id": "130", "MetaData": {
        "LastUpdatedTime": LAST_UPDATED}}]}]}]}  # fmt: skip
    [from_cdc] = parse_cdc(body, realm_id="1")
    assert from_legacy.id == from_cloud.id == from_cdc.id == "1:Invoice:130:2026-12-06T22:42:19Z"
    later = parse_delivery(legacy("2026-12-06T14:50:00-0800"), realm_id="1").ours[0]
    assert later.id != from_legacy.id  # a later change of the same invoice is another


@pytest.mark.parametrize("last_updated", [None, "", "   "])
def test_a_legacy_event_without_its_time_is_refused(last_updated: str | None) -> None:
    with pytest.raises(MalformedDelivery):
        parse_delivery(legacy(last_updated), realm_id="1")


class FakeCdcClient:
    """Answers ``GET /cdc`` with as many objects per entity as ``counts`` says, capped at
    CDC_MAX in all as QuickBooks does; remembers what was asked."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.asked: list[list[str]] = []

    async def _request(self, method: str, path: str, *, read: Any) -> dict[str, Any]:
        entities = parse_qs(urlparse(path).query)["entities"][0].split(",")
        self.asked.append(entities)
        room, answer = CDC_MAX, {}
        for entity in entities:
            answer[entity] = min(self.counts.get(entity, 0), room)
            room -= answer[entity]
        return cdc_body(answer)


async def test_a_full_cdc_answer_is_asked_again_one_entity_at_a_time() -> None:
    client = FakeCdcClient({"Invoice": 700, "Payment": 600, "CreditMemo": 5})
    changes = QboChanges(cast(QboClient, client), realm_id="1")
    events = await changes.changes_since(NOW)
    assert len(events) == 1305
    assert client.asked == [
        ["Invoice", "Payment", "CreditMemo"], ["Invoice"], ["Payment"], ["CreditMemo"]
    ]  # fmt: skip


async def test_an_entity_filling_an_answer_alone_is_cut_short_and_said() -> None:
    client = FakeCdcClient({"Invoice": 1500, "Payment": 3})
    changes = QboChanges(cast(QboClient, client), realm_id="1")
    with pytest.raises(CdcTruncated) as cut:
        await changes.changes_since(NOW)
    assert cut.value.entities == ["Invoice"] and len(cut.value.events) == CDC_MAX + 3


async def test_the_fake_quickbooks_answers_at_most_1000_objects_across_entities() -> None:
    def doc(n: int) -> Any:
        return SimpleNamespace(
            updated=NOW + timedelta(seconds=n), to_intuit=lambda tz, n=n: {"Id": str(n)}
        )

    state = SimpleNamespace(
        clock=lambda: NOW + timedelta(hours=1),
        tz=UTC,
        invoices=SimpleNamespace(all_by_id=lambda: []),
        ledger=SimpleNamespace(
            payments={n: doc(n) for n in range(800)},
            credit_memos={n: doc(n) for n in range(400)},
        ),
    )
    query = b"entities=Payment,CreditMemo&changedSince=2026-11-30T00:00:00Z"
    request = Request({"type": "http", "method": "GET", "query_string": query, "headers": []})
    answer = await sandbox_cdc.cdc(cast(Any, state), request)
    [part] = json.loads(bytes(answer.body))["CDCResponse"]
    payments, memos = part["QueryResponse"]
    assert len(payments["Payment"]) == 800 and len(memos["CreditMemo"]) == 200


def test_resolved_alert_names_money_still_to_account_for() -> None:
    followup = FollowUp(
        id=1,
        invoice="11265",
        kind=RiskKind.FAILED_PAYMENT,
        reference="CB-4471",
        amount=Decimal("10.00"),
        what="x",
        acknowledged_by="U1",
        opened_at=NOW,
    )
    message = resolved_alert("11265", now=NOW, followups=[followup])
    assert "balances match" in json.dumps(message.as_kwargs())
    assert "CB-4471 ($10.00) is still to account for" in message.text
    assert "agree again" not in message.text
    assert "agree again" in resolved_alert("11265", now=NOW).text


def test_watch_messages_show_times_in_the_readers_zone() -> None:
    c = comparison(acct("40.00"), mirror("45.00"))
    grace = timedelta(minutes=15)
    alert = change_alert(
        c, reason="Invoice edited", now=NOW, full_resync_since=NOW.date(), grace=grace,
        waited=grace,
    )  # fmt: skip
    portal = SimpleNamespace(reference="CB-1", amount=Decimal(5), currency="USD", paid_at=NOW)
    qbo = SimpleNamespace(id="9", reference=None, total=Decimal(5), customer_name=None)
    collision = SimpleNamespace(
        invoice_number="11265", portal=portal, qbo=qbo, recorded_by=None, matched="same amount"
    )
    messages = [
        alert,
        resolved_alert("11265", now=NOW),
        collision_message(cast(Any, collision), now=NOW),
        cdc_too_old(NOW - timedelta(days=40), days=30),
    ]
    for message in messages:
        shown = json.dumps(message.as_kwargs()["blocks"])
        assert "<!date^" in shown
        assert " UTC" not in re.sub(r"<!date\^[^>]*>", "", shown)  # but in the fallbacks


def test_the_alert_says_how_long_after_the_last_change_it_rechecked() -> None:
    c = comparison(acct("40.00"), mirror("45.00"))
    grace = timedelta(minutes=15)

    def head(waited: timedelta) -> str:
        message = change_alert(
            c, reason="Invoice edited", now=NOW, full_resync_since=NOW.date(), grace=grace,
            waited=waited,
        )  # fmt: skip
        return json.dumps(message.blocks[0].to_dict())

    assert "re-checked 15 min after the last change, once the portal" in head(grace)
    short = head(timedelta(minutes=2))  # changes kept coming; the cap cut the grace short
    assert "re-checked 2 min after the last change" in short and "time to sync" not in short


def test_cdc_ids_without_a_time_differ_by_contents() -> None:
    body = {"CDCResponse": [{"QueryResponse": [{"Invoice": [
        {"Id": "5", "Balance": 1}, {"Id": "5", "Balance": 2}]}]}]}  # fmt: skip
    first, second = parse_cdc(body, realm_id="1")
    assert first.id != second.id
