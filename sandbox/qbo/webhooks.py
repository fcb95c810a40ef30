"""The fake QuickBooks Online's webhooks: every change to an invoice, payment or credit memo
is delivered to the app's endpoint as Intuit does: batched over a short window, in the
legacy ``eventNotifications`` format or as CloudEvents (a setting), signed with the
verifier token (``intuit-signature``: base64 HMAC-SHA256 of the body)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

log = logging.getLogger(__name__)
Format = Literal["cloudevents", "legacy"]


@dataclass(frozen=True)
class Change:
    entity: str
    """``Invoice``, ``Payment``, ``CreditMemo``."""
    entity_id: str
    operation: str
    """``Create``, ``Update``, ``Delete``, ``Void``."""
    at: datetime


@dataclass
class WebhookSender:
    realm_id: str
    url: str
    verifier: str
    format: Format = "cloudevents"
    window: float = 0.5
    """Changes are gathered this long, then delivered together."""
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    transport: httpx.AsyncBaseTransport | None = None
    statuses: list[int] = field(default_factory=list)
    """The answer to each delivery, in order (0: not delivered)."""
    _pending: list[Change] = field(default_factory=list)
    _flush: asyncio.Task[None] | None = None

    def notify(self, entity: str, entity_id: str, operation: str) -> None:
        """A change happened: delivered within ``window`` seconds, with any others."""
        self._pending.append(Change(entity, entity_id, operation, self.clock()))
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._deliver_later())

    async def _deliver_later(self) -> None:
        await asyncio.sleep(self.window)
        await self.deliver()

    async def deliver(self) -> int:
        """Send what is pending now; the endpoint's status (0 when nothing was sent)."""
        changes, self._pending = self._pending, []
        if not changes:
            return 0
        body = json.dumps(payload(changes, realm_id=self.realm_id, form=self.format)).encode()
        headers = {
            "content-type": "application/json",
            "intuit-signature": sign(body, self.verifier),
        }
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=10) as client:
                status = (await client.post(self.url, content=body, headers=headers)).status_code
        except httpx.HTTPError as exc:
            log.warning("sandbox QBO: webhook delivery failed (%s)", type(exc).__name__)
            status = 0
        self.statuses.append(status)
        return status

    async def aclose(self) -> None:
        """Deliver what is pending, and stop."""
        if self._flush is not None and not self._flush.done():
            self._flush.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush
        await self.deliver()


def sign(body: bytes, verifier: str) -> str:
    return base64.b64encode(hmac.new(verifier.encode(), body, hashlib.sha256).digest()).decode()


def payload(changes: list[Change], *, realm_id: str, form: Format) -> Any:
    """One delivery of ``changes`` in Intuit's ``form``."""
    if form == "legacy":
        entities = [
            {
                "name": c.entity,
                "id": c.entity_id,
                "operation": c.operation,
                "lastUpdated": c.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            }
            for c in changes
        ]
        return {
            "eventNotifications": [{"realmId": realm_id, "dataChangeEvent": {"entities": entities}}]
        }
    return [
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "intuit.sandbox",
            "type": f"qbo.{c.entity.lower()}.{_past(c.operation)}.v1",
            "datacontenttype": "application/json",
            "time": c.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "intuitentityid": c.entity_id,
            "intuitaccountid": realm_id,
            "data": {},
        }
        for c in changes
    ]


def _past(operation: str) -> str:
    word = operation.lower()
    return word + "d" if word.endswith("e") else word + "ed"
