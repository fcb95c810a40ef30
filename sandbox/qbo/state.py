"""The fake QuickBooks Online's state: invoices, OAuth clients, knobs and counters."""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sandbox.qbo.invoices import InvoiceTable, QboInvoice
from sandbox.qbo.ledger import Document, Ledger, PaymentRejected, QboCreditMemo, QboPayment
from sandbox.qbo.oauth import OAuthServer, TokenGrant
from sandbox.qbo.query import Query
from sandbox.qbo.seed import seed_story
from sandbox.scenarios import MATCHING_COUNT, REALM_ID, seed_invoices

INTUIT_TZ = timezone(timedelta(hours=-8), "PST")
"""Intuit stamps MetaData in Pacific time with an offset, never in UTC."""


class FaultKind(StrEnum):
    THROTTLE = "429"
    SERVER_ERROR = "500"
    UNAVAILABLE = "503"
    TIMEOUT = "timeout"
    """Hold the request longer than any client waits (``QboKnobs.timeout_seconds``)."""
    DROP = "drop"
    """Send half a response, then close the connection."""
    EXPIRED_TOKEN = "expired_token"
    """Expire every access token and answer 401."""
    FAULT_IN_200 = "fault_in_200"
    """A SystemFault inside an HTTP 200."""


@dataclass
class QboKnobs:
    """Behaviour of the fake QBO; tests change these fields at run time."""

    latency: float = 0.0
    """Seconds added to every API request (not to the token endpoint)."""
    max_per_minute: int = 500
    max_concurrent: int = 10
    throttle_as_xml: bool = False
    retry_after: float | None = None
    """When set, 429 answers carry ``Retry-After`` with this many seconds."""
    access_token_ttl: int = 3600
    refresh_token_ttl: int = 8_640_000
    rotate_refresh_tokens: bool = True
    fault_rate: float = 0.0
    """Probability that an API request gets a random fault from ``fault_kinds``."""
    fault_kinds: tuple[FaultKind, ...] = (
        FaultKind.THROTTLE,
        FaultKind.SERVER_ERROR,
        FaultKind.UNAVAILABLE,
    )
    fault_queue: deque[FaultKind] = field(default_factory=deque)
    """The next API requests get these faults, first one first."""
    timeout_seconds: float = 30.0
    closed_through: date | None = None
    """The books are closed through this day: a write dated on or before it is refused
    (the company's closing date)."""


class Throttle:
    """Per-realm limits: requests started in a rolling minute, and requests in flight."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._starts: deque[float] = deque()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.rejected = 0

    def try_acquire(self, *, per_minute: int, concurrent: int) -> bool:
        now = self._clock()
        while self._starts and self._starts[0] <= now - 60.0:
            self._starts.popleft()
        if len(self._starts) >= per_minute or self.in_flight >= concurrent:
            self.rejected += 1
            return False
        self._starts.append(now)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return True

    def release(self) -> None:
        self.in_flight -= 1


class QboState:
    """Everything the fake QBO knows. Create with :meth:`seeded` for the sandbox world."""

    def __init__(
        self,
        *,
        realm_id: str = REALM_ID,
        knobs: QboKnobs | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        seed: int = 0,
        tz: tzinfo = INTUIT_TZ,
    ) -> None:
        self.realm_id = realm_id
        self.knobs = knobs or QboKnobs()
        self.clock = clock
        self.tz = tz
        self.rng = random.Random(seed)
        self.invoices = InvoiceTable()
        self.ledger = Ledger(self.invoices)
        """Payments and credit memos."""
        self.oauth = OAuthServer(realm_id)
        self.throttle = Throttle()
        self.request_counts: Counter[str] = Counter()
        """Requests per URL path, every one counted (throttled and faulted too)."""
        self.queries: deque[str] = deque(maxlen=10_000)
        """The latest query statements, oldest first."""
        self.on_change: Callable[[str, str, str], None] | None = None
        """Told of every change (entity, Id, operation): the webhooks (sandbox.qbo.webhooks)."""

    def _changed(self, entity: str, entity_id: str, operation: str) -> None:
        if self.on_change is not None:
            self.on_change(entity, entity_id, operation)
        self.write_answers: dict[str, tuple[int, dict[str, Any]]] = {}
        """``requestid`` -> the first answer to a write sent with it (status, body)."""
        self.writes: list[dict[str, Any]] = []
        """Every write that changed something, as sent (tests count them)."""

    def forget_requests(self) -> None:
        """Start counting requests afresh (the seeded world's history is not the test's)."""
        self.request_counts.clear()
        self.queries.clear()

    @classmethod
    def seeded(
        cls,
        now: datetime,
        *,
        matching: int = MATCHING_COUNT,
        realm_id: str = REALM_ID,
        knobs: QboKnobs | None = None,
        clock: Callable[[], datetime] | None = None,
        seed: int = 0,
        causes: bool = True,
    ) -> QboState:
        """The sandbox world of ``sandbox.scenarios`` as QBO holds it (``causes``: with the
        scenarios of every cause of a discrepancy, played out through payments, credit
        memos, deletions and voids)."""
        state = cls(realm_id=realm_id, knobs=knobs, seed=seed)
        if clock is not None:
            state.clock = clock
        for row in seed_invoices(now, matching=matching, causes=causes):
            if row.qbo_balance is None:
                continue
            if row.story is not None:
                seed_story(state, row, now)
                continue
            created = row.qbo_updated
            if row.portal_balance is not None:  # the portal has it: created before its sync
                created = min(row.qbo_updated, row.portal_synced - timedelta(days=10))
            state.add_invoice(
                row.number,
                total=row.total,
                balance=row.qbo_balance,
                customer_id=row.customer_id,
                customer_name=row.customer,
                invoice_id=row.qbo_id,
                created=created,
                updated=row.qbo_updated,
                sync_token=1 if row.qbo_updated > created else 0,
            )
        return state

    # -- invoices ---------------------------------------------------------------------
    def add_invoice(
        self,
        number: str,
        *,
        total: Decimal,
        balance: Decimal | None = None,
        customer_id: str = "1",
        customer_name: str = "Amy's Bird Sanctuary",
        invoice_id: str | None = None,
        created: datetime | None = None,
        updated: datetime | None = None,
        txn_date: date | None = None,
        due_date: date | None = None,
        currency: str | None = "USD",
        sync_token: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> QboInvoice:
        """Add an invoice (a new Id after the highest unless ``invoice_id`` is given)."""
        created = created or self.clock()
        txn = txn_date or created.astimezone(self.tz).date()
        invoice = QboInvoice(
            id=invoice_id or self.invoices.next_id(),
            doc_number=number,
            customer_id=customer_id,
            customer_name=customer_name,
            total=total,
            balance=total if balance is None else balance,
            txn_date=txn,
            due_date=due_date or txn + timedelta(days=30),
            created=created,
            updated=updated or created,
            sync_token=sync_token,
            currency=currency,
            extra=extra,
        )
        if not invoice.id.isdigit():
            raise ValueError("QBO Ids are digits")
        self.invoices.add(invoice)
        return invoice

    def invoice(self, number: str) -> QboInvoice:
        """The (first) invoice with this DocNumber; KeyError when there is none."""
        found = self.invoices.by_number(number)
        if not found:
            raise KeyError(number)
        return found[0]

    def update_invoice(
        self,
        number: str,
        *,
        balance: Decimal | None = None,
        total: Decimal | None = None,
        customer_name: str | None = None,
        when: datetime | None = None,
    ) -> QboInvoice:
        """Change an invoice as a QBO user would: SyncToken and LastUpdatedTime move on."""
        invoice = self.invoice(number)
        if total is not None:
            invoice.total = total
        if balance is not None:
            invoice.balance = balance
        if customer_name is not None:
            invoice.customer_name = customer_name
        invoice.sync_token += 1
        invoice.updated = when or self.clock()
        self.invoices.changed()
        self._changed("Invoice", invoice.id, "Update")
        return invoice

    def delete_invoice(self, number: str, *, when: datetime | None = None) -> QboInvoice:
        """Delete the (first) invoice with this DocNumber; its payments and credits stay on
        the customer, unapplied."""
        invoice = self.invoice(number)
        self.ledger.release(invoice, now=when or self.clock())
        self._changed("Invoice", invoice.id, "Delete")
        return self.invoices.remove(invoice.id)

    def void_invoice(self, number: str, *, when: datetime | None = None) -> QboInvoice:
        """Void as QBO does: the invoice stays, zeroed, with a "Voided" note; its payments
        and credits stay on the customer, unapplied."""
        invoice = self.invoice(number)
        now = when or self.clock()
        self.ledger.release(invoice, now=now)
        invoice.total = invoice.balance = Decimal(0)
        invoice.voided = True
        invoice.sync_token += 1
        invoice.updated = now
        self.invoices.changed()
        self._changed("Invoice", invoice.id, "Void")
        return invoice

    def receive_payment(self, body: dict[str, Any], *, when: datetime | None = None) -> QboPayment:
        """POST /payment: apply an Intuit Payment document (PaymentRejected when refused)."""
        now = when or self.clock()
        txn = body.get("TxnDate")
        self.check_period(date.fromisoformat(txn) if isinstance(txn, str) else now.date())
        payment = self.ledger.receive_payment(body, now=now)
        self._changed("Payment", payment.id, "Create")
        return payment

    def update_payment(self, body: dict[str, Any], *, when: datetime | None = None) -> QboPayment:
        """POST /payment?operation=update (PaymentRejected when refused: 5010 on a stale
        SyncToken)."""
        payment = self.ledger.payments.get(str(body.get("Id") or ""))
        if payment is not None:
            self.check_period(payment.txn_date)
        updated = self.ledger.update_payment(body, now=when or self.clock())
        self._changed("Payment", updated.id, "Update")
        return updated

    def check_period(self, day: date) -> None:
        closed = self.knobs.closed_through
        if closed is not None and day <= closed:
            raise PaymentRejected(
                "6200",
                "Account Period Closed",
                f"Account Period Closed, Cannot Update Through Services API: the books are "
                f"closed through {closed.isoformat()}",
            )

    def add_credit_memo(
        self, customer_id: str, total: Decimal, *, number: str, when: datetime | None = None
    ) -> QboCreditMemo:
        name = next((i.customer_name for i in self.invoices.by_customer(customer_id)), "")
        memo = self.ledger.add_credit_memo(
            customer_id, name, total, number=number, now=when or self.clock()
        )
        self._changed("CreditMemo", memo.id, "Create")
        return memo

    def invoice_json(self, number: str) -> dict[str, Any]:
        return self.invoice(number).to_intuit(self.tz)

    def run_query(self, query: Query) -> list[Document] | int:
        """The page a query asks for (invoices, payments or credit memos), or the count for
        ``count(*)``."""
        rows: Sequence[Document]
        if query.entity == "Invoice":
            rows = self.invoices.select(query)
        else:
            rows = self.ledger.select(query)
        if query.count:
            return len(rows)
        start = query.start_position - 1
        return list(rows[start : start + query.max_results])

    # -- OAuth ------------------------------------------------------------------------
    def register_client(self, client_id: str, client_secret: str) -> str:
        """A person connects an app to this company: returns its first refresh token."""
        return self.oauth.register_client(
            client_id, client_secret, now=self.clock(), ttl=self.knobs.refresh_token_ttl
        )

    def refresh_tokens(self, client_id: str, refresh_token: str) -> TokenGrant:
        return self.oauth.refresh(
            client_id,
            refresh_token,
            now=self.clock(),
            access_ttl=self.knobs.access_token_ttl,
            refresh_ttl=self.knobs.refresh_token_ttl,
            rotate=self.knobs.rotate_refresh_tokens,
        )

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired from now on."""
        self.oauth.expire_access_tokens(now=self.clock())

    def revoke(self, client_id: str) -> None:
        """Disconnect the app: its refresh and access tokens stop working."""
        self.oauth.revoke(client_id)

    # -- faults -----------------------------------------------------------------------
    def inject(self, *faults: FaultKind | str) -> None:
        """Queue faults for the next API requests, in order."""
        self.knobs.fault_queue.extend(FaultKind(f) for f in faults)

    def next_fault(self) -> FaultKind | None:
        if self.knobs.fault_queue:
            return self.knobs.fault_queue.popleft()
        if self.knobs.fault_rate > 0 and self.rng.random() < self.knobs.fault_rate:
            return self.rng.choice(self.knobs.fault_kinds)
        return None

    def reseed(self, seed: int) -> None:
        """Restart the random fault sequence (repeatable runs)."""
        self.rng = random.Random(seed)
