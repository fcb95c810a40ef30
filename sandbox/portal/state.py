"""The fake portal's data and knobs: what it holds (records in ``sandbox.portal.records``),
request counters, latency, sync duration and injected faults."""

from __future__ import annotations

import asyncio
import bisect
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from sandbox.kill import KillSwitch
from sandbox.portal.ledger import Payment, story_payments
from sandbox.portal.records import (
    CENT,
    Company,
    Contact,
    Fault,
    Integration,
    Invoice,
    ProcessedRecord,
    QboConnection,
    RecordResync,
    SyncRun,
    new_id,
    utcnow,
)
from sandbox.scenarios import (
    CONNECTED_AGO,
    INTEGRATION_ID,
    INTEGRATION_NAME,
    LAST_SYNC_AGO,
    MATCHING_COUNT,
    seed_invoices,
)

DEFAULT_API_KEY = "sandbox-portal-key"


@dataclass(repr=False)
class PortalState:
    """Everything the fake portal knows; tests and the demo change the knobs at run time."""

    api_key: str
    qbo: QboConnection
    integrations: dict[str, Integration]
    invoices: dict[str, Invoice] = field(default_factory=dict)
    companies: dict[str, Company] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    runs: dict[str, SyncRun] = field(default_factory=dict)
    resyncs: dict[str, RecordResync] = field(default_factory=dict)
    payments: dict[str, list[Payment]] = field(default_factory=dict)
    """Invoice number -> the payments clients made on it in the portal, oldest first."""
    dismissed: list[Payment] = field(default_factory=list)
    """Failed transfers marked resolved (``POST /payments/{id}/dismiss``), in order."""
    requests: Counter[str] = field(default_factory=Counter)
    """``"METHOD /path"`` -> number of requests received (faulted and refused ones too)."""
    # Knobs.
    latency: float = 0.0
    """Seconds added to every request."""
    sync_duration: float = 2.0
    """Seconds a full sync takes at least (queued for a tenth of it, then running)."""
    record_resync_seconds: float = 1.0
    """Seconds a record resync takes at least."""
    embeds_payments: bool = True
    """Contract 1.2 (``include=payments``, ``updated_since``); False answers as 1.1 (422)."""
    transfer_delay: float = 0.0
    """Seconds a client's payment stays pending before the portal transfers it."""
    transfers: set[asyncio.Task[int]] = field(default_factory=set, init=False)
    """Transfers waiting for ``transfer_delay`` (sandbox.portal.payments)."""
    timeout_seconds: float = 30.0
    """How long a request hit by an injected timeout hangs before answering 504."""
    qbo_timeout: float = 10.0
    """Seconds the portal waits for each QBO answer."""
    faults: deque[Fault] = field(default_factory=deque)
    """Injected failures still to come (see :meth:`inject`)."""
    kill_switch: KillSwitch = field(default_factory=KillSwitch)
    """Kill a bot process right after a chosen answer (sandbox.kill)."""
    clock: Callable[[], datetime] = utcnow
    qbo_transport: httpx.AsyncBaseTransport | None = None
    """Tests can route the portal's QBO calls through an in-process transport."""
    _order: list[str] = field(default_factory=list, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _qbo_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _payment_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def __post_init__(self) -> None:
        self._order = sorted(self.invoices)

    def __repr__(self) -> str:
        return f"PortalState(invoices={len(self.invoices)}, runs={len(self.runs)}, ...)"

    @classmethod
    def seeded(
        cls,
        now: datetime,
        *,
        qbo_base_url: str,
        qbo_token_url: str,
        qbo_realm_id: str,
        qbo_client_id: str,
        qbo_client_secret: str,
        qbo_refresh_token: str,
        matching: int = MATCHING_COUNT,
        api_key: str = DEFAULT_API_KEY,
        causes: bool = True,
    ) -> PortalState:
        """The portal as the seeded scenarios describe it (see ``sandbox.scenarios``).

        Portal payments of the stories that QBO does not have yet are ``pending``: the
        portal's payment run transfers them (``portal_payments.transfer_pending``) before it
        first answers about payments, and QBO accepts or refuses each one."""
        last_sync = now - LAST_SYNC_AGO
        integration = Integration(
            INTEGRATION_ID,
            INTEGRATION_NAME,
            "quickbooks_online",
            "accounting",
            last_sync,
            connected_at=now - CONNECTED_AGO,
        )
        state = cls(
            api_key=api_key,
            qbo=QboConnection(
                base_url=qbo_base_url.rstrip("/"),
                token_url=qbo_token_url,
                realm_id=qbo_realm_id,
                client_id=qbo_client_id,
                client_secret=qbo_client_secret,
                refresh_token=qbo_refresh_token,
            ),
            integrations={integration.id: integration},
        )
        rows = seed_invoices(now, matching=matching, causes=causes)
        for row in rows:
            if row.portal_balance is None:
                continue
            state.invoices[row.number] = Invoice(
                number=row.number,
                external_id=row.portal_external_id,
                customer_id=row.customer_id,
                customer_name=row.customer,
                total=row.total.quantize(CENT),
                balance=row.portal_balance.quantize(CENT),
                currency="USD",
                status="paid" if row.portal_balance == 0 else "open",
                integration_id=INTEGRATION_ID,
                last_synced_at=row.portal_synced,
                updated_at=row.portal_synced,
            )
            state.payments.update(story_payments(row, now))
            if row.customer_id not in state.companies:
                state.companies[row.customer_id] = Company(row.customer_id, row.customer, last_sync)
                # One billing contact per company; it shares the company's id.
                state.contacts[row.customer_id] = Contact(
                    row.customer_id, row.customer_id, f"Billing contact, {row.customer}"
                )
        state._order = sorted(state.invoices)
        # The sync history: the scheduled sync that last succeeded, a week back; what it
        # processed was already in the portal.
        sync_from = (last_sync - timedelta(days=7)).date()
        history = SyncRun(
            id=new_id("run"),
            integration_id=INTEGRATION_ID,
            sync_from=sync_from,
            created_at=last_sync - timedelta(seconds=25),
            status="completed",
            started_at=last_sync - timedelta(seconds=24),
            finished_at=last_sync,
        )
        companies: set[str] = set()
        for row in rows:
            if row.portal_balance is None or row.qbo_updated.date() < sync_from:
                continue
            if row.qbo_updated > last_sync:
                continue
            balance = row.portal_balance.quantize(CENT)
            history.records.append(
                ProcessedRecord("invoice", row.number, "unchanged", balance, balance)
            )
            if row.customer_id not in companies:
                companies.add(row.customer_id)
                history.records.append(
                    ProcessedRecord("company", row.customer_id, "unchanged", message=row.customer)
                )
        state.runs[history.id] = history
        return state

    # Invoices.
    def put_invoice(self, invoice: Invoice) -> None:
        if invoice.number not in self.invoices:
            bisect.insort(self._order, invoice.number)
        self.invoices[invoice.number] = invoice

    def page_invoices(
        self, *, status: str | None, after: str | None, limit: int, since: datetime | None = None
    ) -> tuple[list[Invoice], str | None]:
        """Invoices ordered by number after ``after`` (updated at or after ``since``); the
        second item is the next ``after``."""
        start = 0 if after is None else bisect.bisect_right(self._order, after)
        page: list[Invoice] = []
        for index in range(start, len(self._order)):
            invoice = self.invoices[self._order[index]]
            if status is not None and invoice.status != status:
                continue
            if since is not None and invoice.updated_at < since:
                continue
            page.append(invoice)
            if len(page) == limit:
                more = index + 1 < len(self._order)
                return page, (invoice.number if more else None)
        return page, None

    # Integrations and sync runs.
    def default_integration(self) -> Integration | None:
        """Where a record resync of an invoice the portal does not have yet looks for it:
        the first accounting integration set up, else the first integration."""
        accounting = [i for i in self.integrations.values() if i.kind == "accounting"]
        candidates = accounting or list(self.integrations.values())
        return candidates[0] if candidates else None

    def active_run(self, integration_id: str) -> SyncRun | None:
        for run in self.runs.values():
            if run.integration_id == integration_id and run.status in ("queued", "running"):
                return run
        return None

    def active_resync(self, record_type: str, record_id: str) -> RecordResync | None:
        """The queued or running resync of this record, if any (at most one at a time)."""
        for resync in self.resyncs.values():
            same = (resync.record_type, resync.record_id) == (record_type, record_id)
            if same and resync.status in ("queued", "running"):
                return resync
        return None

    def runs_of(self, integration_id: str) -> list[SyncRun]:
        """Newest first."""
        runs = [r for r in self.runs.values() if r.integration_id == integration_id]
        return sorted(runs, key=lambda r: r.created_at, reverse=True)

    # Faults and counters.
    def inject(
        self,
        status: int = 500,
        *,
        count: int = 1,
        retry_after: int | None = None,
        path: str | None = None,
    ) -> None:
        """The next ``count`` requests (to ``path``, when given) answer ``status``."""
        for _ in range(count):
            self.faults.append(Fault("status", status, retry_after, path))

    def inject_timeout(self, *, count: int = 1, path: str | None = None) -> None:
        """The next ``count`` requests hang for ``timeout_seconds``."""
        for _ in range(count):
            self.faults.append(Fault("timeout", 504, None, path))

    def inject_drop(self, *, count: int = 1, path: str | None = None) -> None:
        """The next ``count`` requests get half an answer, then the connection closes."""
        for _ in range(count):
            self.faults.append(Fault("drop", 200, None, path))

    def take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.applies_to(path):
                self.faults.remove(fault)
                return fault
        return None

    def request_count(self, method: str, path_prefix: str = "") -> int:
        """Requests received with this method whose path starts with ``path_prefix``."""
        prefix = f"{method.upper()} {path_prefix}"
        return sum(n for key, n in self.requests.items() if key.startswith(prefix))

    # Background work.
    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        """Wait until every sync run and record resync has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel the background work (call before the event loop ends)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def qbo_lock(self) -> asyncio.Lock:
        """One token refresh at a time: two refreshing the same token break the chain."""
        return self._qbo_lock

    @property
    def payment_lock(self) -> asyncio.Lock:
        """One payment run at a time."""
        return self._payment_lock

    def pending_payments(self) -> list[Payment]:
        return [
            p
            for payments in self.payments.values()
            for p in payments
            if p.transfer_status == "pending"
        ]
