"""What the fake portal's syncs do: pull invoices from QuickBooks Online over HTTP and
mirror them, recording what each run processed."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, Literal

from sandbox.portal.qbo_client import QboClient, QboError
from sandbox.portal.records import CENT, Company, Invoice, ProcessedRecord, RecordResync, SyncRun
from sandbox.portal.state import PortalState


def _amount(value: Any) -> Decimal:
    if isinstance(value, float):  # never expected: the client parses with Decimal
        value = str(value)
    return Decimal(value if value is not None else 0).quantize(CENT)


MIRRORED = ("external_id", "customer_id", "customer_name", "total", "balance", "currency", "status")
"""The invoice fields the portal copies from QBO."""


def apply_qbo_invoice(
    state: PortalState, raw: dict[str, Any], integration_id: str
) -> ProcessedRecord:
    """Upsert one QBO invoice, matched by DocNumber; the link (external_id) follows QBO's Id."""
    now = state.clock()
    number = str(raw.get("DocNumber") or "")
    qbo_id = str(raw.get("Id") or "")
    if not number:
        return ProcessedRecord("invoice", qbo_id or "unknown", "failed", message="no DocNumber")
    customer = raw.get("CustomerRef") or {}
    currency = raw.get("CurrencyRef") or {}
    balance = _amount(raw.get("Balance"))
    incoming = Invoice(
        number=number,
        external_id=qbo_id or None,
        customer_id=str(customer["value"]) if customer.get("value") is not None else None,
        customer_name=str(customer.get("name") or ""),
        total=_amount(raw.get("TotalAmt")),
        balance=balance,
        currency=str(currency["value"]) if currency.get("value") else None,
        status=_status(raw, balance),
        integration_id=integration_id,
        last_synced_at=now,
        updated_at=now,
    )
    existing = state.invoices.get(number)
    if existing is None:
        state.put_invoice(incoming)
        return ProcessedRecord("invoice", number, "created", None, balance)
    before = existing.balance
    changed = [name for name in MIRRORED if getattr(existing, name) != getattr(incoming, name)]
    for name in changed:
        setattr(existing, name, getattr(incoming, name))
    existing.last_synced_at = now
    if not changed:
        return ProcessedRecord("invoice", number, "unchanged", before, balance)
    existing.updated_at = now
    return ProcessedRecord(
        "invoice", number, "updated", before, balance, "changed: " + ", ".join(changed)
    )


def _status(raw: dict[str, Any], balance: Decimal) -> Literal["open", "paid", "void"]:
    voided = "Voided" in str(raw.get("PrivateNote") or "") and _amount(raw.get("TotalAmt")) == 0
    return "void" if voided else "paid" if balance == 0 else "open"


def apply_company(state: PortalState, raw: dict[str, Any]) -> ProcessedRecord | None:
    ref = raw.get("CustomerRef") or {}
    if ref.get("value") is None:
        return None
    company_id, name = str(ref["value"]), str(ref.get("name") or "")
    company = state.companies.get(company_id)
    if company is None:
        state.companies[company_id] = Company(company_id, name, state.clock())
        return ProcessedRecord("company", company_id, "created", message=name)
    if company.name != name:
        company.name, company.updated_at = name, state.clock()
        return ProcessedRecord("company", company_id, "updated", message=name)
    return ProcessedRecord("company", company_id, "unchanged", message=name)


async def run_full_sync(state: PortalState, run: SyncRun) -> None:
    """Queued, then running: pull everything changed since ``sync_from``; completed or failed."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.sleep(state.sync_duration / 10)
    run.status, run.started_at = "running", state.clock()
    statement = (
        "SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= "
        f"'{run.sync_from.isoformat()}T00:00:00Z'"
    )
    companies: dict[str, ProcessedRecord] = {}
    try:
        async with QboClient(state) as qbo:
            async for page in qbo.query_pages(statement):
                for raw in page:
                    run.records.append(apply_qbo_invoice(state, raw, run.integration_id))
                    company = apply_company(state, raw)
                    if company is not None and company.number not in companies:
                        companies[company.number] = company
                        run.records.append(company)
    except QboError as exc:
        run.error = str(exc)
    await asyncio.sleep(max(0.0, state.sync_duration - (loop.time() - began)))
    run.finished_at = state.clock()
    if run.error is None:
        run.status = "completed"
        integration = state.integrations.get(run.integration_id)
        if integration is not None:
            integration.last_successful_sync_at = run.finished_at
    else:
        run.status = "failed"


async def run_record_resync(state: PortalState, resync: RecordResync) -> None:
    """Resync one record. An invoice is re-read by its link (external_id) when it has one,
    so a stale link fails with QBO's 610; one the portal lacks is looked up by number."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.sleep(state.record_resync_seconds / 4)
    resync.status, resync.started_at = "running", state.clock()
    try:
        if resync.record_type == "invoice":
            await _resync_invoice(state, resync.record_id)
        elif resync.record_type == "company" and resync.record_id not in state.companies:
            resync.error = f"No company {resync.record_id} in the integration."
        elif resync.record_type == "contact" and resync.record_id not in state.contacts:
            resync.error = f"No contact {resync.record_id} in the integration."
    except QboError as exc:
        resync.error = str(exc)
    await asyncio.sleep(max(0.0, state.record_resync_seconds - (loop.time() - began)))
    resync.finished_at = state.clock()
    resync.status = "failed" if resync.error else "completed"


async def _resync_invoice(state: PortalState, number: str) -> None:
    existing = state.invoices.get(number)
    default = state.default_integration()
    if existing is not None:
        integration_id = existing.integration_id
    elif default is not None:
        integration_id = default.id
    else:
        raise QboError("the portal has no integration")
    async with QboClient(state) as qbo:
        if existing is not None and existing.external_id:
            raw = await qbo.get_invoice(existing.external_id)
        else:
            found = await qbo.find_by_number(number)
            if found is None:
                raise QboError(f"no invoice with DocNumber {number}")
            raw = found
    apply_qbo_invoice(state, raw, integration_id)
    apply_company(state, raw)
