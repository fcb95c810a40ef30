"""The watch's pure parts: Intuit's two webhook formats, the signature, quiet hours, and the
collision of a payment recorded by hand with a portal payment pending transfer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

import pytest

from services.models import AccountingPayment, PortalPayment, TransferStatus
from services.ports import BillingPortal
from services.watch import OpenInvoice, RecordedPayment, collisions_of, in_quiet_hours
from services.watch_events import ChangeEvent, MalformedDelivery, parse_delivery, sign, signature_ok

LEGACY = {
    "eventNotifications": [
        {
            "realmId": "1",
            "dataChangeEvent": {
                "entities": [
                    {
                        "name": "Invoice",
                        "id": "130",
                        "operation": "Update",
                        "lastUpdated": "2026-12-06T14:42:19-0800",
                    },
                    {
                        "name": "Customer",
                        "id": "9",
                        "operation": "Create",
                        "lastUpdated": "2026-12-06T14:40:00-0800",
                    },
                ]
            },
        },
        {
            "realmId": "2",
            "dataChangeEvent": {
                "entities": [
                    {
                        "name": "Payment",
                        "id": "5",
                        "operation": "Create",
                        "lastUpdated": "2026-12-06T14:40:00-0800",
                    }
                ]
            },
        },
    ]
}


def test_legacy_events_of_our_realm_with_a_stable_id() -> None:
    delivery = parse_delivery(json.dumps(LEGACY).encode(), realm_id="1")
    assert delivery.other_realms == 1
    invoice, customer = delivery.ours
    assert (invoice.entity, invoice.entity_id, invoice.operation) == ("Invoice", "130", "update")
    assert invoice.occurred_at == datetime(2026, 12, 6, 22, 42, 19, tzinfo=UTC)
    assert invoice.watched and not customer.watched
    again = parse_delivery(json.dumps(LEGACY).encode(), realm_id="1")
    assert [e.id for e in again.ours] == [e.id for e in delivery.ours]  # a redelivery


def test_cloud_events_name_the_entity_and_operation_in_their_type() -> None:
    body = [
        {
            "specversion": "1.0",
            "id": "ev-1",
            "type": "qbo.creditmemo.deleted.v1",
            "time": "2026-12-06T21:31:25.179Z",
            "intuitentityid": "77",
            "intuitaccountid": "1",
        }
    ]
    [event] = parse_delivery(json.dumps(body).encode(), realm_id="1").ours
    assert event == ChangeEvent(
        id="1:CreditMemo:77:2026-12-06T21:31:25Z",
        realm_id="1",
        entity="CreditMemo",
        entity_id="77",
        operation="delete",
        occurred_at=datetime(2026, 12, 6, 21, 31, 25, 179000, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "body",
    [
        b"[{",
        b'"text"',
        b'[{"specversion": "1.0", "id": "x", "type": "invoice.updated", '
        b'"intuitentityid": "1", "intuitaccountid": "1"}]',
        b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": {}}]}',
        b'[{"specversion": "1.0", "id": "x", "type": "qbo.invoice.updated.v1", '
        b'"intuitentityid": "1", "intuitaccountid": "1", "time": "yesterday"}]',
    ],
)
def test_malformed_deliveries_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedDelivery):
        parse_delivery(body, realm_id="1")


def test_the_signature_is_the_hmac_of_the_raw_body() -> None:
    body = b'{"eventNotifications": []}'
    assert signature_ok(body, sign(body, "v"), "v")
    assert not signature_ok(body + b" ", sign(body, "v"), "v")
    assert not signature_ok(body, sign(body, "other"), "v")
    assert not signature_ok(body, "not base64!", "v") and not signature_ok(body, None, "v")


def test_quiet_hours_may_cross_midnight_in_the_digest_time_zone() -> None:
    late = datetime(2026, 12, 7, 4, 30, tzinfo=UTC)  # 23:30 in New York
    noon = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
    assert in_quiet_hours(late, "22:00-07:00", "America/New_York")
    assert not in_quiet_hours(noon, "22:00-07:00", "America/New_York")
    assert in_quiet_hours(noon, "09:00-17:30", "UTC") and not in_quiet_hours(noon, None, "UTC")


class Feed:
    def __init__(self, balances: dict[str, Decimal]) -> None:
        self._balances = balances

    async def open_invoices(self, customer_id: str) -> list[OpenInvoice]:
        return [OpenInvoice(number=n, balance=b) for n, b in self._balances.items()]

    async def balances(self, numbers: Sequence[str]) -> dict[str, Decimal]:
        return {n: self._balances[n] for n in numbers}


class Portal:
    def __init__(self, payments: list[PortalPayment]) -> None:
        self.payments = payments

    async def get_invoice_payments(self, numbers: Sequence[str]) -> dict[str, list[PortalPayment]]:
        return {n: [p for p in self.payments if p.invoice_number == n] for n in numbers}


def portal_payment(amount: str, status: TransferStatus, ref: str = "CB-1") -> PortalPayment:
    return PortalPayment(
        id=f"pay-{ref}",
        invoice_number="11005",
        reference=ref,
        amount=Decimal(amount),
        paid_at=datetime(2026, 12, 6, 21, 0, tzinfo=UTC),
        status=status,
    )


def hand_payment(total: str, applied: dict[str, Decimal]) -> RecordedPayment:
    payment = AccountingPayment(id="9001", customer_id="6", total=Decimal(total))
    return RecordedPayment(payment=payment, invoices=applied, recorded_by="Alice")


@pytest.mark.parametrize(
    ("portal_amount", "qbo_total", "applied", "expected"),
    [
        ("25.00", "25.00", {"11005": Decimal("25.00")}, "same amount"),
        ("100.00", "100.00", {}, "same amount"),  # applied to no invoice: the customer's
        ("60.00", "40.00", {"11005": Decimal("40.00")}, "remaining balance"),  # 20 + 40
        ("25.00", "30.00", {"11005": Decimal("30.00")}, None),
    ],
)
async def test_a_pending_portal_payment_collides_on_amount_or_remaining_balance(
    portal_amount: str, qbo_total: str, applied: dict[str, Decimal], expected: str | None
) -> None:
    pending = portal_payment(portal_amount, TransferStatus.PENDING)
    posted = portal_payment(portal_amount, TransferStatus.POSTED, ref="CB-2")
    portal = cast(BillingPortal, Portal([pending, posted]))
    found = await collisions_of(
        hand_payment(qbo_total, applied),
        feed=Feed({"11005": Decimal("20.00")}),  # type: ignore[arg-type]
        portal=portal,
    )
    assert [c.matched for c in found] == ([expected] if expected else [])
    if expected:
        assert found[0].portal is pending and found[0].recorded_by == "Alice"
