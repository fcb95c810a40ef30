"""What the QuickBooks watch reads (services.watch.ChangeFeed): the documents a change event
names, the open invoices of a customer, and Change Data Capture (``GET /cdc``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from services.adapters.qbo import evidence
from services.adapters.qbo.answers import json_body
from services.adapters.qbo.client import QboClient
from services.adapters.qbo.documents import utc_datetime
from services.adapters.qbo.faults import SYSTEM
from services.errors import UpstreamError
from services.watch import CdcTruncated, OpenInvoice, RecordedPayment
from services.watch_events import ChangeEvent, change_id

CDC_ENTITIES = ("Invoice", "Payment", "CreditMemo")
CDC_MAX = 1000
"""QuickBooks' CDC answers at most this many objects, across the entities asked for."""


class QboChanges:
    """A ``ChangeFeed`` on the QuickBooks client (its limits, retries and tokens)."""

    def __init__(self, client: QboClient, *, realm_id: str) -> None:
        self._client = client
        self._realm_id = realm_id

    async def invoice_numbers(self, ids: Sequence[str]) -> dict[str, str]:
        records = await self._client.get_invoice_records(ids)
        return {r.id: r.number for r in records if r.number}

    async def payments(self, ids: Sequence[str]) -> list[RecordedPayment]:
        raws = await evidence._select(self._client.query, "Payment", "Id", _digits(ids))
        payments = evidence._parsed(raws, lambda raw: (evidence.to_payment(raw), raw))
        invoice_ids = [link.txn_id for p, _ in payments for link in p.applied]
        numbers = await self.invoice_numbers(invoice_ids) if invoice_ids else {}
        recorded = []
        for payment, raw in payments:
            applied: dict[str, Decimal] = {}
            for link in payment.applied:
                number = numbers.get(link.txn_id)
                if number:
                    applied[number] = applied.get(number, Decimal(0)) + (link.amount or 0)
            recorded.append(
                RecordedPayment(payment=payment, invoices=applied, recorded_by=_recorded_by(raw))
            )
        return recorded

    async def credit_memo_customers(self, ids: Sequence[str]) -> list[str]:
        raws = await evidence._select(self._client.query, "CreditMemo", "Id", _digits(ids))
        memos = evidence._parsed(raws, evidence.to_credit_memo)
        return [m.customer_id for m in memos if m.customer_id]

    async def open_invoices(self, customer_id: str) -> list[OpenInvoice]:
        statement = (
            f"SELECT * FROM Invoice WHERE CustomerRef = {evidence.quote(customer_id)} "
            "AND Balance > '0' MAXRESULTS 1000"
        )
        invoices = await self._client.query_invoices(statement)
        return [OpenInvoice(number=i.number, balance=i.balance) for i in invoices]

    async def balances(self, numbers: Sequence[str]) -> dict[str, Decimal]:
        found = await self._client.get_invoices(numbers)
        return {number: invoice.balance for number, invoice in found.items()}

    async def changes_since(self, since: datetime) -> list[ChangeEvent]:
        """Every change since ``since``. CDC answers at most CDC_MAX objects, across the
        entities asked for: a full answer is asked again one entity at a time; an entity
        that alone fills an answer raises CdcTruncated (with what was read)."""
        body = await self._cdc(CDC_ENTITIES, since)
        if sum(cdc_counts(body).values()) < CDC_MAX:
            return parse_cdc(body, realm_id=self._realm_id)
        events: list[ChangeEvent] = []
        full: list[str] = []
        for entity in CDC_ENTITIES:
            body = await self._cdc((entity,), since)
            events += parse_cdc(body, realm_id=self._realm_id)
            if cdc_counts(body).get(entity, 0) >= CDC_MAX:
                full.append(entity)
        if full:
            raise CdcTruncated(events, entities=full)
        return events

    async def _cdc(self, entities: Sequence[str], since: datetime) -> Mapping[str, Any]:
        params = urlencode(
            {
                "entities": ",".join(entities),
                "changedSince": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
        body: Mapping[str, Any] = await self._client._request(
            "GET", f"/cdc?{params}", read=json_body
        )
        return body


def cdc_counts(body: Mapping[str, Any]) -> dict[str, int]:
    """How many objects of each entity a CDC answer holds."""
    counts: dict[str, int] = {}
    for response in body.get("CDCResponse") or []:
        for part in (response or {}).get("QueryResponse") or []:
            for entity in CDC_ENTITIES:
                found = (part or {}).get(entity) or []
                counts[entity] = counts.get(entity, 0) + len(found)
    return counts


def parse_cdc(body: Mapping[str, Any], *, realm_id: str) -> list[ChangeEvent]:
    """The changes of a CDC answer (``CDCResponse[].QueryResponse[]``) as change events; a
    deleted object (``status: Deleted``) as a delete."""
    responses = body.get("CDCResponse")
    if not isinstance(responses, list):
        raise UpstreamError("the CDC answer has no CDCResponse list", system=SYSTEM)
    events = []
    for response in responses:
        for part in (response or {}).get("QueryResponse") or []:
            for entity in CDC_ENTITIES:
                for raw in (part or {}).get(entity) or []:
                    if not isinstance(raw, Mapping) or "Id" not in raw:
                        continue
                    text = str((raw.get("MetaData") or {}).get("LastUpdatedTime") or "")
                    when = utc_datetime(text) if text else None
                    deleted = str(raw.get("status") or "").lower() == "deleted"
                    entity_id = str(raw["Id"])
                    fallback = f"cdc:{entity}:{entity_id}:{_digest(raw)}"
                    events.append(
                        ChangeEvent(
                            id=change_id(realm_id, entity, entity_id, when, fallback=fallback),
                            realm_id=realm_id,
                            entity=entity,
                            entity_id=entity_id,
                            operation="delete" if deleted else "update",
                            occurred_at=when,
                        )
                    )
    return events


def _digest(raw: Mapping[str, Any]) -> str:
    """A short hash of a document's contents (its id when it has no update time)."""
    text = json.dumps(raw, sort_keys=True, default=str).encode()
    return hashlib.sha256(text).hexdigest()[:16]


def _digits(ids: Sequence[str]) -> list[str]:
    return [i for i in dict.fromkeys(ids) if i.isdigit()]


def _recorded_by(raw: Mapping[str, Any]) -> str | None:
    """Who last changed the document, when QuickBooks says (``MetaData.LastModifiedByRef``)."""
    ref = (raw.get("MetaData") or {}).get("LastModifiedByRef") or {}
    name = ref.get("name") or ref.get("value") if isinstance(ref, Mapping) else None
    return str(name) if name else None
