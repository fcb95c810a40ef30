"""Gathering the evidence of why invoices differ, through the ports, a batch at a time.

For a handful of compared invoices every read goes out at once (one more round trip after
the comparison): the accounting invoices by number (links, voids, duplicates), the
invoices the portal links to when those differ, the customers' payments and credit memos,
and the portal's payments. A source that fails is noted as a gap, not an error: the
diagnosis then says what it could not check.

    evidence = await gather_evidence(comparisons, accounting=qbo, portal=portal)
    diagnoses = await diagnose_comparisons(comparisons, accounting=qbo, portal=portal)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import TypeVar

from services.causes import Diagnosis
from services.comparison import DEFAULT_MONEY_TOLERANCE, Comparison, Evidence
from services.diagnosis import diagnose
from services.errors import UpstreamError
from services.models import (
    AccountingPayment,
    AccountingReading,
    CreditMemo,
    InvoiceRecord,
    PortalPayment,
)
from services.ports import AccountingSystem, BillingPortal

log = logging.getLogger(__name__)
T = TypeVar("T")
Reader = Callable[[Sequence[str]], Awaitable[list[T]]]
MapReader = Callable[[Sequence[str]], Awaitable[dict[str, list[PortalPayment]]]]


async def diagnose_comparisons(
    comparisons: Sequence[Comparison],
    *,
    accounting: AccountingSystem,
    portal: BillingPortal,
    tolerance: Decimal = DEFAULT_MONEY_TOLERANCE,
) -> dict[str, Diagnosis]:
    """The diagnosis of each comparison, by invoice number (evidence gathered in one go)."""
    evidence = await gather_evidence(
        comparisons, accounting=accounting, portal=portal, tolerance=tolerance
    )
    return {number: diagnose(item) for number, item in evidence.items()}


async def gather_evidence(
    comparisons: Sequence[Comparison],
    *,
    accounting: AccountingSystem,
    portal: BillingPortal,
    tolerance: Decimal = DEFAULT_MONEY_TOLERANCE,
    also: Collection[str] = (),
    read: Mapping[str, Read] = MappingProxyType({}),
) -> dict[str, Evidence]:
    """Evidence for each comparison, by number. Only out-of-sync ones (and those numbered
    in ``also``) cost any reads; the others get the comparison alone (``gathered`` False).
    What ``read`` already holds (a check's first round trip) is not asked for again."""
    result = {c.number: Evidence(comparison=c, tolerance=tolerance) for c in comparisons}
    wanted = [c for c in comparisons if c.out_of_sync or c.number in also]
    if not wanted:
        return result
    numbers = list(dict.fromkeys(c.number for c in wanted))
    have = {n: read[n] for n in numbers if n in read}
    known = [r for x in have.values() for r in x.accounting.records]
    known_payments = [p for x in have.values() for p in x.accounting.payments or ()]
    known_memos = [m for x in have.values() for m in x.accounting.credit_memos or ()]
    covered = {x.accounting.customer_id for x in have.values() if x.accounting.payments is not None}
    known_ids = {r.id for r in known}
    to_find = [n for n in numbers if n not in have]
    customers = list(dict.fromkeys(
        cid for c in wanted if (cid := _customer_id(c)) and cid not in covered
    ))  # fmt: skip
    links = list(dict.fromkeys(
        link for c in wanted if (link := _foreign_link(c)) and link not in known_ids
    ))  # fmt: skip
    in_portal = [c.number for c in wanted if c.portal is not None and c.number not in have]
    gaps: dict[str, str] = {}
    records, linked, payments, memos, portal_payments = await asyncio.gather(
        _read("QuickBooks invoices", _maybe(to_find, accounting.find_invoice_records), [], gaps),
        _read("QuickBooks invoices by Id", _maybe(links, accounting.get_invoice_records), [], gaps),
        _read("QuickBooks payments", _maybe(customers, accounting.list_payments_for), [], gaps),
        _read("QuickBooks credit memos", _maybe(customers, accounting.list_credit_memos_for), [], gaps),
        _read("portal payments", _maybe_map(in_portal, portal.get_invoice_payments), {}, gaps),
    )  # fmt: skip
    records = known + records
    payments, memos = known_payments + payments, known_memos + memos
    portal_payments = {**{n: x.portal_payments for n, x in have.items()}, **portal_payments}
    by_id = {r.id: r for r in records} | {r.id: r for r in linked}
    for c in wanted:
        result[c.number] = _evidence(
            c,
            tolerance=tolerance,
            records=records,
            by_id=by_id,
            link_checked="QuickBooks invoices by Id" not in gaps,
            payments=payments,
            memos=memos,
            portal_payments=portal_payments.get(c.number, []),
            gaps=_gaps_for(c, gaps),
        )
    return result


@dataclass(frozen=True)
class Read:
    """What a check's first round trip read of one invoice: the accounting side with its
    evidence (``AccountingSystem.read_invoice``) and the portal's payments on it."""

    accounting: AccountingReading
    portal_payments: list[PortalPayment]


def _evidence(
    c: Comparison,
    *,
    tolerance: Decimal,
    records: list[InvoiceRecord],
    by_id: dict[str, InvoiceRecord],
    link_checked: bool,
    payments: list[AccountingPayment],
    memos: list[CreditMemo],
    portal_payments: list[PortalPayment],
    gaps: tuple[str, ...],
) -> Evidence:
    mine = tuple(r for r in records if r.number == c.number)
    link = _foreign_link(c)
    ids = {r.id for r in mine} | {i for i in (c.accounting and c.accounting.id, link) if i}
    customer = _customer_id(c)
    relevant = tuple(
        p
        for p in payments
        if p.customer_id == customer
        and (p.unapplied > 0 or any(p.applied_to(invoice_id) > 0 for invoice_id in ids))
    )
    credits = tuple(m for m in memos if m.customer_id == customer and m.remaining > 0)
    return Evidence(
        comparison=c,
        tolerance=tolerance,
        gathered=True,
        records=mine,
        link_record=by_id.get(link) if link else None,
        link_checked=link is not None and link_checked,
        payments=relevant,
        credit_memos=credits,
        portal_payments=tuple(portal_payments),
        gaps=gaps,
    )


def _customer_id(c: Comparison) -> str | None:
    if c.accounting is not None and c.accounting.customer_id:
        return c.accounting.customer_id
    return c.portal.customer_id if c.portal is not None else None


def _foreign_link(c: Comparison) -> str | None:
    """The accounting Id the portal links to, when it is not the invoice found by number."""
    link = c.portal.external_id if c.portal is not None else None
    if not link or (c.accounting is not None and c.accounting.id == link):
        return None
    return link


def _gaps_for(c: Comparison, gaps: dict[str, str]) -> tuple[str, ...]:
    relevant = dict(gaps)
    if _foreign_link(c) is None:
        relevant.pop("QuickBooks invoices by Id", None)
    if c.portal is None:
        relevant.pop("portal payments", None)
    return tuple(f"{what} ({why})" for what, why in relevant.items())


async def _maybe(keys: list[str], read: Reader[T]) -> list[T]:
    return await read(keys) if keys else []


async def _maybe_map(keys: list[str], read: MapReader) -> dict[str, list[PortalPayment]]:
    return await read(keys) if keys else {}


async def _read(what: str, work: Awaitable[T], empty: T, gaps: dict[str, str]) -> T:
    try:
        return await work
    except UpstreamError as exc:
        log.warning("evidence: could not read %s: %s", what, exc)
        gaps[what] = f"{exc.system} did not answer: {exc.message}"
        return empty
