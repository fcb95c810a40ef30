"""QuickBooks Online change events as its webhooks deliver them: the signature check and
both payload formats (the legacy ``eventNotifications`` and the CloudEvents array). Pure.

Intuit signs the raw body: ``intuit-signature`` is base64(HMAC-SHA256(verifier token,
body)). One delivery may carry events of several companies (realms); the caller keeps its
own and counts the rest. Every change, whatever brought it (either webhook format or a CDC
catch-up), has one id: realm, entity, entity id and the entity's last update time to the
second (``change_id``), so a change delivered twice, or by a webhook and then by CDC, is
stored once. A legacy event without ``lastUpdated`` is refused (400): with no time, its
id would stand for every later change of that entity.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

ENTITIES = {"invoice": "Invoice", "payment": "Payment", "creditmemo": "CreditMemo"}
"""The entities the watch acts on, by their lower-case name (CloudEvents' ``type``)."""
PAST = {
    "created": "create",
    "updated": "update",
    "deleted": "delete",
    "voided": "void",
    "merged": "merge",
}
"""CloudEvents name the operation in the past tense; the legacy format does not."""
MAX_EVENTS = 10_000
"""A delivery with more events than this is refused (Intuit batches far fewer)."""


class MalformedDelivery(ValueError):
    """The body is in neither format: answered 400, nothing stored."""


@dataclass(frozen=True)
class ChangeEvent:
    id: str
    realm_id: str
    entity: str
    """``Invoice``, ``Payment``, ``CreditMemo`` (or another entity's own name)."""
    entity_id: str
    operation: str
    """``create``, ``update``, ``delete``, ``void``, ``merge``, ``emailed`` (lower case)."""
    occurred_at: datetime | None

    @property
    def watched(self) -> bool:
        return self.entity in ENTITIES.values()


@dataclass(frozen=True)
class Delivery:
    ours: list[ChangeEvent]
    other_realms: int
    """Events of companies other than ours (ignored)."""


def change_id(
    realm_id: str, entity: str, entity_id: str, when: datetime | None, *, fallback: str
) -> str:
    """The one id of a change, from any source: ``realm:Entity:id:2026-12-06T10:00:00Z``
    (its last update time, to the second: CDC has no milliseconds); ``fallback`` (a
    source's own unique id) for a change without a time."""
    if when is None:
        return fallback[:200]
    second = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{realm_id}:{entity}:{entity_id}:{second}"[:200]


def signature_ok(body: bytes, header: str | None, verifier: str) -> bool:
    """The ``intuit-signature`` header matches the body (compared in constant time)."""
    if not header or not verifier:
        return False
    try:
        given = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(verifier.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(given, expected)


def sign(body: bytes, verifier: str) -> str:
    """The ``intuit-signature`` of ``body`` (what Intuit sends; the sandbox signs with it)."""
    return base64.b64encode(hmac.new(verifier.encode(), body, hashlib.sha256).digest()).decode()


def parse_delivery(body: bytes, *, realm_id: str) -> Delivery:
    """The events of one delivery, ours apart from other companies'. MalformedDelivery when
    the body is not JSON, in neither format, or an event misses a field it must have."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise MalformedDelivery("the body is not JSON") from None
    if isinstance(data, list):
        events = [_cloud_event(item, n) for n, item in enumerate(data)]
    elif isinstance(data, dict) and "eventNotifications" in data:
        events = _legacy(data["eventNotifications"])
    else:
        raise MalformedDelivery("neither a CloudEvents array nor eventNotifications")
    if not events:
        raise MalformedDelivery("no events")
    if len(events) > MAX_EVENTS:
        raise MalformedDelivery("too many events")
    ours = [e for e in events if e.realm_id == realm_id]
    return Delivery(ours=ours, other_realms=len(events) - len(ours))


def _cloud_event(item: Any, n: int) -> ChangeEvent:
    if not isinstance(item, dict):
        raise MalformedDelivery(f"event {n} is not an object")
    event_id, kind = _text(item, "id", n), _text(item, "type", n)
    if not str(item.get("specversion", "")).startswith("1."):
        raise MalformedDelivery(f"event {n}: specversion 1.x expected")
    parts = kind.split(".")
    if len(parts) < 3 or parts[0] != "qbo":
        raise MalformedDelivery(f"event {n}: type {kind[:60]!r} is not qbo.<entity>.<operation>")
    entity = ENTITIES.get(parts[1].lower(), parts[1])
    realm, entity_id = _text(item, "intuitaccountid", n), _text(item, "intuitentityid", n)
    when = _time(item.get("time"), n)
    return ChangeEvent(
        id=change_id(realm, entity, entity_id, when, fallback=f"ce:{event_id}"),
        realm_id=realm,
        entity=entity,
        entity_id=entity_id,
        operation=PAST.get(parts[2].lower(), parts[2].lower()),
        occurred_at=when,
    )


def _legacy(notifications: Any) -> list[ChangeEvent]:
    if not isinstance(notifications, list):
        raise MalformedDelivery("eventNotifications is not a list")
    events: list[ChangeEvent] = []
    for n, note in enumerate(notifications):
        if not isinstance(note, dict):
            raise MalformedDelivery(f"notification {n} is not an object")
        realm = _text(note, "realmId", n)
        change = note.get("dataChangeEvent")
        entities = change.get("entities") if isinstance(change, dict) else None
        if not isinstance(entities, list):
            raise MalformedDelivery(f"notification {n}: no dataChangeEvent.entities list")
        for entity in entities:
            if not isinstance(entity, dict):
                raise MalformedDelivery(f"notification {n}: an entity is not an object")
            name, entity_id = _text(entity, "name", n), _text(entity, "id", n)
            operation = _text(entity, "operation", n).lower()
            when = _time(entity.get("lastUpdated"), n)
            if when is None:
                raise MalformedDelivery(f"notification {n}: an entity has no lastUpdated")
            kind = ENTITIES.get(name.lower(), name)
            events.append(
                ChangeEvent(
                    id=change_id(realm, kind, entity_id, when, fallback=""),
                    realm_id=realm,
                    entity=kind,
                    entity_id=entity_id,
                    operation=operation,
                    occurred_at=when,
                )
            )
    return events


def _text(obj: dict[str, Any], key: str, n: int) -> str:
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > 150:
        raise MalformedDelivery(f"event {n}: {key} missing or not text")
    return value.strip()


def _time(value: object, n: int) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedDelivery(f"event {n}: time is not text")
    text = value.strip().replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":  # -0700 (legacy)
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedDelivery(f"event {n}: time {value[:40]!r} unreadable") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
