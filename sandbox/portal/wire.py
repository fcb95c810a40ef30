"""The fake portal's wire format: JSON bodies of the Portal REST API and its errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from starlette.responses import JSONResponse

from sandbox.portal.ledger import Payment
from sandbox.portal.records import (
    Company,
    Contact,
    Integration,
    Invoice,
    ProcessedRecord,
    RecordResync,
    SyncRun,
)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, **(extra or {})}}
    return JSONResponse(body, status, headers)


def invalid(message: str) -> ApiError:
    return ApiError(422, "validation_error", message)


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def invoice_json(inv: Invoice) -> dict[str, Any]:
    return {
        "number": inv.number,
        "external_id": inv.external_id,
        "customer": {"id": inv.customer_id, "name": inv.customer_name},
        "total": money(inv.total),
        "balance": money(inv.balance),
        "currency": inv.currency,
        "status": inv.status,
        "integration_id": inv.integration_id,
        "last_synced_at": ts(inv.last_synced_at),
        "updated_at": ts(inv.updated_at),
    }


def invoice_page_body(page: list[Invoice], cursor: str | None) -> bytes:
    """``JSONResponse({"invoices": [invoice_json(i), ...], "next_cursor": cursor}).body``,
    written directly: a page of 1000 invoices takes a few milliseconds instead of ~20 (the
    scale sandbox serves pages by the hundred). Kept equal to it by a test."""
    text = _string
    rows = ",".join(
        f'{{"number":{text(i.number)},"external_id":{_nullable(i.external_id)},'
        f'"customer":{{"id":{_nullable(i.customer_id)},"name":{text(i.customer_name)}}},'
        f'"total":{_money(i.total)},"balance":{_money(i.balance)},'
        f'"currency":{_nullable(i.currency)},"status":{text(i.status)},'
        f'"integration_id":{text(i.integration_id)},'
        f'"last_synced_at":{_time(i.last_synced_at)},"updated_at":{_time(i.updated_at)}}}'
        for i in page
    )
    return f'{{"invoices":[{rows}],"next_cursor":{_nullable(cursor)}}}'.encode()


_string = json.encoder.encode_basestring  # what JSONResponse writes (UTF-8 kept)


def _nullable(value: str | None) -> str:
    return "null" if value is None else _string(value)


@lru_cache(maxsize=4096)
def _money(value: Decimal | None) -> str:
    """``money`` as JSON, remembered (equal amounts write the same)."""
    return _nullable(money(value))


@lru_cache(maxsize=1024)
def _time(value: datetime | None) -> str:
    """``ts`` as JSON, remembered: most invoices share a handful of times."""
    return _nullable(ts(value))


def integration_json(integration: Integration) -> dict[str, Any]:
    return {
        "id": integration.id,
        "name": integration.name,
        "provider": integration.provider,
        "kind": integration.kind,
        "last_successful_sync_at": ts(integration.last_successful_sync_at),
        "connected_at": ts(integration.connected_at),
    }


def company_json(company: Company) -> dict[str, Any]:
    return {"id": company.id, "name": company.name, "updated_at": ts(company.updated_at)}


def contact_json(contact: Contact) -> dict[str, Any]:
    return {"id": contact.id, "company_id": contact.company_id, "name": contact.name}


def run_json(run: SyncRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "integration_id": run.integration_id,
        "status": run.status,
        "sync_from": run.sync_from.isoformat(),
        "created_at": ts(run.created_at),
        "started_at": ts(run.started_at),
        "finished_at": ts(run.finished_at),
        "records_processed": len(run.records),
        "error": run.error,
    }


def record_json(record: ProcessedRecord) -> dict[str, Any]:
    return {
        "record_type": record.record_type,
        "number": record.number,
        "action": record.action,
        "balance_before": money(record.balance_before),
        "balance_after": money(record.balance_after),
        "message": record.message,
    }


def resync_json(resync: RecordResync) -> dict[str, Any]:
    return {
        "id": resync.id,
        "record_type": resync.record_type,
        "record_id": resync.record_id,
        "status": resync.status,
        "created_at": ts(resync.created_at),
        "started_at": ts(resync.started_at),
        "finished_at": ts(resync.finished_at),
        "error": resync.error,
    }


def payment_json(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "invoice_number": payment.invoice_number,
        "reference": payment.reference,
        "amount": money(payment.amount),
        "currency": payment.currency,
        "paid_at": ts(payment.paid_at),
        "transfer_status": payment.transfer_status,
        "transfer_error": payment.transfer_error,
        "transferred_at": ts(payment.transferred_at),
        "external_id": payment.external_id,
        "invoice_external_id": payment.invoice_external_id,
    }
