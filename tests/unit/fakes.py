"""In-memory fakes of the ports the resync runner and the guard use: one invoice's world
(QuickBooks, the portal and its payments), follow-ups, jobs and a silent reporter."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.causes import AtRisk
from services.errors import StaleObjectError, ValidationFault
from services.followups import FollowUp
from services.jobs import Job, JobState, Outcome
from services.models import (
    AccountingInvoice,
    AccountingPayment,
    AccountingReading,
    CreditMemo,
    Integration,
    IntegrationKind,
    InvoiceRecord,
    LinkedTxn,
    PortalInvoice,
    PortalPayment,
    PortalRecord,
    ProcessedRecord,
    RecordResync,
    RecordType,
    SyncRun,
    SyncStatus,
    TransferStatus,
    WriteResult,
)
from services.ports import Listed
from tests.diagnosis_support import NOW, SYNCED


@dataclass
class World:
    acct: AccountingInvoice
    portal: PortalInvoice
    portal_payments: list[PortalPayment] = field(default_factory=list)
    qbo_payments: list[AccountingPayment] = field(default_factory=list)
    memos: list[CreditMemo] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    on_write: Callable[[World], None] | None = None
    connected_at: datetime | None = None
    """When the portal's integration was connected (contract 1.2), if it says."""
    qbo_writes: list[str] = field(default_factory=list)
    """``requestid`` of every write QuickBooks carried out (at most once each)."""
    dismissed: list[str] = field(default_factory=list)


class FakeAccounting:
    name = "QuickBooks Online"

    def __init__(self, world: World) -> None:
        self.world = world

    async def get_invoice(self, number: str) -> AccountingInvoice | None:
        return self.world.acct if number == self.world.acct.number else None

    async def get_invoices(self, numbers: Sequence[str]) -> dict[str, AccountingInvoice]:
        a = self.world.acct
        return {a.number: a} if a.number in numbers else {}

    async def read_invoice(
        self, number: str, *, customer_id: str | None = None
    ) -> AccountingReading:
        """The invoice and its records; payments and memos left to their own reads."""
        if number != self.world.acct.number:
            return AccountingReading()
        records = await self.find_invoice_records([number])
        return AccountingReading(invoice=self.world.acct, records=tuple(records))

    def iter_open_invoices(
        self, *, page_size: int = 1000
    ) -> AsyncIterator[list[tuple[str, Listed]]]:
        raise AssertionError("the digest is not part of these tests")

    async def list_changed_invoices(
        self, *, since: datetime, limit: int = 10_000
    ) -> list[AccountingInvoice]:
        return [self.world.acct] if self.world.acct.last_updated >= since else []

    async def count_changed_invoices(self, *, since: datetime) -> int:
        return len(await self.list_changed_invoices(since=since))

    async def find_invoice_records(self, numbers: Sequence[str]) -> list[InvoiceRecord]:
        a = self.world.acct
        record = InvoiceRecord(
            id=a.id, number=a.number, customer_id=a.customer_id, total=a.total, balance=a.balance
        )
        return [record] if a.number in numbers else []

    async def get_invoice_records(self, ids: Sequence[str]) -> list[InvoiceRecord]:
        return []

    async def list_payments_for(self, customer_ids: Sequence[str]) -> list[AccountingPayment]:
        return list(self.world.qbo_payments)

    async def list_credit_memos_for(self, customer_ids: Sequence[str]) -> list[CreditMemo]:
        return list(self.world.memos)

    async def aclose(self) -> None:
        return None


class FakeWriter:
    """QuickBooks' writes on the world: SyncTokens checked (5010), ``requestid`` replayed."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.answers: dict[str, WriteResult] = {}
        self.fail_with: Exception | None = None

    async def apply_payment(
        self, payment: AccountingPayment, *, invoice_id: str, amount: Decimal, request_id: str
    ) -> WriteResult:
        if request_id in self.answers:
            return self.answers[request_id]
        current = next(p for p in self.world.qbo_payments if p.id == payment.id)
        if current.sync_token != payment.sync_token:
            raise StaleObjectError("Stale Object Error", system="QuickBooks Online", code="5010")
        self._refuse_if_asked()
        link = LinkedTxn(txn_id=invoice_id, txn_type="Invoice", amount=amount)
        token = str(int(current.sync_token or "0") + 1)
        updated = current.model_copy(
            update={
                "applied": (*current.applied, link),
                "unapplied": current.unapplied - amount,
                "sync_token": token,
            }
        )
        self.world.qbo_payments = [
            updated if p.id == payment.id else p for p in self.world.qbo_payments
        ]
        return self._done(request_id, payment.id, token, amount, updated.unapplied)

    async def apply_credit_memo(
        self, memo: CreditMemo, *, invoice_id: str, amount: Decimal, request_id: str
    ) -> WriteResult:
        if request_id in self.answers:
            return self.answers[request_id]
        self._refuse_if_asked()
        current = next(m for m in self.world.memos if m.id == memo.id)
        if amount > current.remaining:
            raise ValidationFault("Business Validation Error", system="QuickBooks Online")
        kept = current.model_copy(update={"remaining": current.remaining - amount})
        self.world.memos = [kept if m.id == memo.id else m for m in self.world.memos]
        return self._done(request_id, f"9{len(self.answers) + 1}", "0", amount, Decimal(0))

    def _refuse_if_asked(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    def _done(
        self, request_id: str, txn_id: str, token: str, amount: Decimal, unapplied: Decimal
    ) -> WriteResult:
        acct = self.world.acct
        self.world.acct = acct.model_copy(update={"balance": acct.balance - amount})
        self.world.qbo_writes.append(request_id)
        result = WriteResult(
            txn_type="Payment",
            txn_id=txn_id,
            sync_token=token,
            request_id=request_id,
            unapplied=unapplied,
        )
        self.answers[request_id] = result
        return result


class FakePortal:
    def __init__(self, world: World) -> None:
        self.world = world
        self.ids = itertools.count(1)

    async def get_invoice(self, number: str) -> PortalInvoice | None:
        return self.world.portal if number == self.world.portal.number else None

    async def get_invoices(self, numbers: Sequence[str]) -> dict[str, PortalInvoice]:
        p = self.world.portal
        return {p.number: p} if p.number in numbers else {}

    async def list_changed_invoices(self, *, since: datetime) -> list[PortalInvoice]:
        raise AssertionError("the digest is not part of these tests")

    async def get_invoice_with_payments(
        self, number: str
    ) -> tuple[PortalInvoice | None, list[PortalPayment]]:
        invoice = await self.get_invoice(number)
        return invoice, await self.list_invoice_payments(number) if invoice else []

    def iter_open_invoices(
        self, *, page_size: int = 1000
    ) -> AsyncIterator[list[tuple[str, Listed]]]:
        raise AssertionError("the digest is not part of these tests")

    async def get_integration(self, integration_id: str) -> Integration:
        return (await self.list_integrations())[0]

    async def list_invoice_payments(self, number: str) -> list[PortalPayment]:
        return list(self.world.portal_payments) if number == self.world.portal.number else []

    async def list_failed_payments(self, *, since: datetime) -> list[PortalPayment]:
        return [p for p in self.world.portal_payments if p.status is TransferStatus.FAILED]

    async def get_record(self, record_type: RecordType, record_id: str) -> PortalRecord | None:
        return None

    async def list_integrations(self) -> list[Integration]:
        return [
            Integration(
                id="int-1",
                name="QuickBooks Online",
                provider="quickbooks_online",
                kind=IntegrationKind.ACCOUNTING,
                last_successful_sync_at=SYNCED,
                connected_at=self.world.connected_at,
            )
        ]

    async def get_invoice_payments(self, numbers: Sequence[str]) -> dict[str, list[PortalPayment]]:
        return {self.world.portal.number: list(self.world.portal_payments)}

    async def dismiss_payment(
        self, payment_id: str, *, idempotency_key: str | None = None
    ) -> PortalPayment:
        found = next(p for p in self.world.portal_payments if p.id == payment_id)
        self.world.portal_payments = [p for p in self.world.portal_payments if p.id != payment_id]
        self.world.dismissed.append(payment_id)
        return found

    def _write(self, what: str) -> None:
        self.world.writes.append(what)
        if self.world.on_write is not None:
            self.world.on_write(self.world)
        acct = self.world.acct  # the mirror now shows QuickBooks' balance
        self.world.portal = self.world.portal.model_copy(update={"balance": acct.balance})

    async def resync_record(
        self, record_type: RecordType, record_id: str, *, idempotency_key: str | None = None
    ) -> RecordResync:
        self._write(f"record:{record_id}")
        return RecordResync(
            id=f"rr-{next(self.ids)}",
            record_type=record_type,
            record_id=record_id,
            status=SyncStatus.COMPLETED,
            created_at=NOW,
            finished_at=NOW,
        )

    async def get_record_resync(self, resync_id: str) -> RecordResync:
        return RecordResync(
            id=resync_id,
            record_type=RecordType.INVOICE,
            record_id=self.world.portal.number,
            status=SyncStatus.COMPLETED,
            created_at=NOW,
            finished_at=NOW,
        )

    async def start_sync(
        self, integration_id: str, *, sync_from: date, idempotency_key: str | None = None
    ) -> SyncRun:
        self._write(f"full:{sync_from}")
        return SyncRun(
            id=f"run-{next(self.ids)}",
            integration_id=integration_id,
            status=SyncStatus.COMPLETED,
            sync_from=sync_from,
            created_at=NOW,
        )

    async def get_sync_run(self, run_id: str) -> SyncRun:
        return SyncRun(
            id=run_id,
            integration_id="int-1",
            status=SyncStatus.COMPLETED,
            sync_from=NOW.date(),
            created_at=NOW,
        )

    async def list_sync_runs(self, integration_id: str, *, limit: int = 10) -> list[SyncRun]:
        return []

    async def list_processed_records(self, run_id: str) -> list[ProcessedRecord]:
        return []

    async def aclose(self) -> None:
        return None


class MemoryFollowUps:
    def __init__(self) -> None:
        self.rows: list[FollowUp] = []

    async def open(
        self, *, invoice: str, risk: AtRisk, acknowledged_by: str, job_id: str | None
    ) -> FollowUp:
        for row in self.rows:
            same = (row.invoice, row.kind, row.reference) == (invoice, risk.kind, risk.reference)
            if same and row.closed_at is None:
                return row
        row = FollowUp(
            id=len(self.rows) + 1,
            invoice=invoice,
            kind=risk.kind,
            reference=risk.reference,
            amount=risk.amount,
            what=risk.what,
            acknowledged_by=acknowledged_by,
            job_id=job_id,
            opened_at=NOW,
        )
        self.rows.append(row)
        return row

    async def open_for(self, *, invoice: str) -> list[FollowUp]:
        return [r for r in self.rows if r.invoice == invoice and r.closed_at is None]

    async def all_open(self, *, limit: int = 200) -> list[FollowUp]:
        return [r for r in self.rows if r.closed_at is None][:limit]

    async def close(
        self, *, followup_id: int, because: str, at: datetime, by: str | None = None
    ) -> bool:
        was_open = any(r.id == followup_id and r.closed_at is None for r in self.rows)
        self.rows = [
            r.model_copy(update={"closed_at": at, "closed_because": because, "closed_by": by})
            if r.id == followup_id and r.closed_at is None
            else r
            for r in self.rows
        ]
        return was_open

    async def get(self, *, followup_id: int) -> FollowUp | None:
        return next((r for r in self.rows if r.id == followup_id), None)

    async def closed_by_hand(self, *, limit: int = 10) -> list[FollowUp]:
        return [r for r in reversed(self.rows) if r.closed_by][:limit]


class MemoryJobs:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}

    def add(self, job: Job) -> Job:
        self.jobs[job.id] = job
        return job

    async def get(self, *, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    async def update(self, *, job_id: str, state: JobState | None = None, **fields: Any) -> Job:
        changes = dict(fields)
        if state is not None:
            changes["state"] = state
        self.jobs[job_id] = self.jobs[job_id].model_copy(update=changes)
        return self.jobs[job_id]

    async def finish(self, *, job_id: str, outcome: Outcome, detail: str | None = None) -> Job:
        done = JobState.DONE if outcome in (Outcome.FIXED, Outcome.COMPLETED) else JobState.FAILED
        return await self.update(job_id=job_id, state=done, outcome=outcome, detail=detail)


class SilentReporter:
    def __init__(self) -> None:
        self.results: list[Any] = []

    async def progress(self, job: Job, *, status: str, elapsed: timedelta) -> Job:
        return job

    async def processed(self, job: Job, run: SyncRun, records: list[ProcessedRecord]) -> None:
        return None

    async def acknowledged(self, job: Job, followups: list[FollowUp]) -> None:
        return None

    async def finished(self, job: Job, result: Any) -> None:
        self.results.append(result)


def money(value: str) -> Decimal:
    return Decimal(value)
