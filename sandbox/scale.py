"""Sandbox worlds at scale: 10,000 to 1,000,000 open invoices with a chosen share of
discrepancies of each kind, to measure the digest. The seeded small world
(``sandbox.scenarios``) is unchanged; this one is generated from a spec and a seed.

    spec = ScaleSpec(open_invoices=100_000, stale=0.01, missing_in_portal=0.005)
    qbo, portal = qbo_state(spec, now), portal_state(spec, now)
    expected = expect(spec)   # what a correct digest finds

Both sides are generated row by row from the same seed, so each can be built in its own
process. Invoices are added in bulk: no per-invoice index rebuild, shared objects for the
repeated values (dates, customers, amounts), so a million take seconds, not hours.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sandbox.portal.records import Integration, Invoice, QboConnection
from sandbox.portal.state import DEFAULT_API_KEY, PortalState
from sandbox.qbo.invoices import QboInvoice
from sandbox.qbo.state import QboKnobs, QboState
from sandbox.scenarios import CUSTOMERS, INTEGRATION_ID, INTEGRATION_NAME, LAST_SYNC_AGO, REALM_ID

MATCH = "match"
STALE = "stale_balance"
MISSING_IN_PORTAL = "missing_in_portal"
PAID_IN_QBO = "paid_in_accounting"
MISSING_IN_QBO = "missing_in_accounting"
RECENT = "recent"
"""Changed in QBO just now, with a balance the portal has not synced yet: a digest leaves
it out as possibly mid-sync."""
DISCREPANCIES = (STALE, MISSING_IN_PORTAL, PAID_IN_QBO, MISSING_IN_QBO)


@dataclass(frozen=True)
class ScaleSpec:
    open_invoices: int
    """Invoices open on at least one side."""
    stale: float = 0.01
    missing_in_portal: float = 0.01
    paid_in_qbo: float = 0.01
    missing_in_qbo: float = 0.01
    recent: float = 0.001
    seed: int = 7
    first_number: int = 1_000_000

    def shares(self) -> list[tuple[str, float]]:
        return [
            (STALE, self.stale),
            (MISSING_IN_PORTAL, self.missing_in_portal),
            (PAID_IN_QBO, self.paid_in_qbo),
            (MISSING_IN_QBO, self.missing_in_qbo),
            (RECENT, self.recent),
        ]


@dataclass(frozen=True, slots=True)
class Row:
    number: str
    qbo_id: str
    kind: str
    customer: int
    total: Decimal
    qbo_balance: Decimal | None
    """None: not in QBO. 0: paid there."""
    portal_balance: Decimal | None
    """None: not in the portal."""


_AMOUNTS = [Decimal(100 + (i * 37) % 900) + Decimal((i * 13) % 100) / 100 for i in range(997)]
_HALVES = [(a / 2).quantize(Decimal("0.01")) for a in _AMOUNTS]
ZERO = Decimal("0.00")


def rows(spec: ScaleSpec) -> Iterator[Row]:
    """The world, one invoice at a time (the same for a given spec)."""
    if not 0 <= sum(share for _, share in spec.shares()) <= 1:
        raise ValueError("the shares add up to more than 1")
    rng = random.Random(spec.seed)
    cuts: list[tuple[float, str]] = []
    total = 0.0
    for kind, share in spec.shares():
        total += share
        cuts.append((total, kind))
    for i in range(spec.open_invoices):
        draw = rng.random()
        kind = next((k for cut, k in cuts if draw < cut), MATCH)
        amount = _AMOUNTS[i % len(_AMOUNTS)]
        balance = amount if i % 3 else _HALVES[i % len(_HALVES)]
        qbo: Decimal | None = balance
        portal: Decimal | None = balance
        if kind in (STALE, RECENT):
            portal = amount if balance != amount else _HALVES[i % len(_HALVES)]
        elif kind == MISSING_IN_PORTAL:
            portal = None
        elif kind == PAID_IN_QBO:
            qbo = ZERO
        elif kind == MISSING_IN_QBO:
            qbo = None
        yield Row(
            str(spec.first_number + i), str(1001 + i), kind, i % len(CUSTOMERS), amount, qbo, portal
        )


@dataclass
class Expected:
    """What a correct digest of the world reports."""

    qbo_open: int = 0
    portal_open: int = 0
    open_invoices: int = 0
    skipped_recent: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    amount: Decimal = ZERO
    numbers: dict[str, set[str]] = field(default_factory=dict)

    @property
    def discrepancies(self) -> int:
        return sum(self.kinds[k] for k in DISCREPANCIES)

    @property
    def qbo_only(self) -> int:
        """Open in QBO only: looked up in the portal."""
        return self.kinds[MISSING_IN_PORTAL]

    @property
    def portal_only(self) -> int:
        """Open in the portal only: looked up in QBO."""
        return self.kinds[PAID_IN_QBO] + self.kinds[MISSING_IN_QBO]


def expect(spec: ScaleSpec) -> Expected:
    found = Expected(numbers={k: set() for k in DISCREPANCIES})
    for row in rows(spec):
        found.open_invoices += 1
        found.qbo_open += bool(row.qbo_balance)
        found.portal_open += row.portal_balance is not None
        found.kinds[row.kind] += 1
        if row.kind == RECENT:
            found.skipped_recent += 1
        elif row.kind != MATCH:
            found.numbers[row.kind].add(row.number)
            found.amount += abs((row.qbo_balance or ZERO) - (row.portal_balance or ZERO))
    return found


def qbo_state(spec: ScaleSpec, now: datetime, *, knobs: QboKnobs | None = None) -> QboState:
    """The QBO side of the world (every invoice it has, paid ones included)."""
    state = QboState(realm_id=REALM_ID, knobs=knobs)
    created = now - timedelta(days=40)
    old = now - LAST_SYNC_AGO - timedelta(days=5)
    changed = now - timedelta(days=1)  # after the portal's last sync: the portal is stale
    txn = created.astimezone(state.tz).date()
    due = txn + timedelta(days=30)
    customers = [(cid, name) for cid, name in CUSTOMERS]
    for row in rows(spec):
        if row.qbo_balance is None:
            continue
        updated = {MATCH: old, RECENT: now}.get(row.kind, changed)
        customer_id, customer = customers[row.customer]
        state.invoices.add(
            QboInvoice(
                id=row.qbo_id,
                doc_number=row.number,
                customer_id=customer_id,
                customer_name=customer,
                total=row.total,
                balance=row.qbo_balance,
                txn_date=txn,
                due_date=due,
                created=created,
                updated=updated,
                sync_token=0 if updated is old else 1,
            )
        )
    return state


def portal_state(spec: ScaleSpec, now: datetime, *, api_key: str = DEFAULT_API_KEY) -> PortalState:
    """The portal side of the world. Its QBO connection points nowhere: it cannot sync."""
    synced = now - LAST_SYNC_AGO
    invoices: dict[str, Invoice] = {}
    for row in rows(spec):
        if row.portal_balance is None:
            continue
        customer_id, customer = CUSTOMERS[row.customer]
        invoices[row.number] = Invoice(
            number=row.number,
            external_id=row.qbo_id,
            customer_id=customer_id,
            customer_name=customer,
            total=row.total,
            balance=row.portal_balance,
            currency="USD",
            status="open" if row.portal_balance else "paid",
            integration_id=INTEGRATION_ID,
            last_synced_at=synced,
            updated_at=synced,
        )
    integration = Integration(
        INTEGRATION_ID, INTEGRATION_NAME, "quickbooks_online", "accounting", synced
    )
    nowhere = QboConnection("http://127.0.0.1:9", "http://127.0.0.1:9", REALM_ID, "-", "-", "-")
    return PortalState(
        api_key=api_key,
        qbo=nowhere,
        integrations={integration.id: integration},
        invoices=invoices,
    )


def change_share(state: QboState | PortalState, spec: ScaleSpec, share: float) -> int:
    """Change ``share`` of the open invoices now (in-sync ones), as a day of work would (the
    incremental digest's bench): of every ten picked, eight are edited in QBO and synced
    by the portal (still in sync), one is edited in QBO only (the portal is stale), one is
    paid in the portal only. Returns how many invoices this side changed."""
    matching = [row for row in rows(spec) if row.kind == MATCH]
    wanted = max(1, round(share * spec.open_invoices))
    picked = matching[:: max(1, len(matching) // wanted)][:wanted]
    changed = 0
    for index, row in enumerate(picked):
        in_qbo, in_portal = index % 10 != 5, index % 10 != 0
        if isinstance(state, QboState) and in_qbo:
            invoice = state.invoice(row.number)
            invoice.balance -= Decimal("1.00")
            invoice.sync_token += 1
            invoice.updated = state.clock()
            changed += 1
        elif isinstance(state, PortalState) and in_portal:
            mirrored = state.invoices[row.number]
            mirrored.balance -= Decimal("1.00")
            mirrored.updated_at = state.clock()
            if index % 10 != 5:
                mirrored.last_synced_at = mirrored.updated_at
            changed += 1
    if isinstance(state, QboState):
        state.invoices.changed()
    return changed
