"""What the read checks share: their findings, walking a paged listing to its end, and the
rules an invoice, its payments and a run's lifecycle must keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from services.adapters.portal_check.probe import CheckFailed, Probe
from services.adapters.portal_check.runner import Skipped, ensure, moment, money

MAX_PAGES = 100_000
"""A walk stops after this many pages (a million invoices at the largest page size...)."""
ABSENT_NUMBER = "ZZ-PORTAL-CHECK-404"
"""An invoice number no portal has (a well-formed one)."""


@dataclass
class Findings:
    """What the read checks learned, for the checks after them."""

    integrations: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    """A sample of the invoices seen (the first and last few of the walk)."""
    invoice_count: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def default_integration(self) -> dict[str, Any] | None:
        accounting = [i for i in self.integrations if i.get("kind") == "accounting"]
        candidates = accounting or self.integrations
        return candidates[0] if candidates else None

    def sample_number(self) -> str:
        if not self.invoices:
            raise Skipped("no invoice was listed")
        number: str = self.invoices[0]["number"]
        return number


@dataclass
class Walk:
    """One paged listing walked to its end."""

    items: list[dict[str, Any]]
    pages: int
    schema_problems: list[str]
    paging_problems: list[str]


async def walk(
    probe: Probe, path: str, item_key: str, schema: str, params: dict[str, str], limit: int
) -> Walk:
    """Every page of a listing, following ``next_cursor`` until it is null. Schema and
    paging problems are collected apart (each is its own check); a cursor seen twice ends
    the walk."""
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    schema_problems: list[str] = []
    paging_problems: list[str] = []
    query = {**params, "limit": str(limit)}
    pages = 0
    while pages < MAX_PAGES:
        answer = await probe.call("GET", path, params=query)
        pages += 1
        answer.expect_status(200)
        problems = probe.contract.problems(schema, answer.body)
        if problems and not schema_problems:
            schema_problems.append(f"{answer.request} breaks {schema}: " + "; ".join(problems))
        body = answer.body if isinstance(answer.body, dict) else {}
        page = body.get(item_key)
        if not isinstance(page, list):
            raise CheckFailed(f"{answer.request} has no {item_key} list: {answer.brief()}")
        if len(page) > limit:
            paging_problems.append(f"{answer.request} holds {len(page)} items, over limit {limit}")
        items += [item for item in page if isinstance(item, dict)]
        cursor = body.get("next_cursor")
        if cursor is None:
            return Walk(items, pages, schema_problems, paging_problems)
        if not isinstance(cursor, str):
            raise CheckFailed(f"{answer.request}: next_cursor {cursor!r} is not a string or null")
        if cursor in seen or cursor == query.get("cursor"):
            paging_problems.append(
                f"{answer.request} returned a cursor already seen ({cursor[:40]}): the pages "
                "go round in circles"
            )
            return Walk(items, pages, schema_problems, paging_problems)
        seen.add(cursor)
        query = {**query, "cursor": cursor}
    paging_problems.append(f"still not at the end after {MAX_PAGES} pages")
    return Walk(items, pages, schema_problems, paging_problems)


def status_agrees(invoice: dict[str, Any]) -> None:
    number = invoice.get("number")
    balance = money(invoice.get("balance"), f"invoice {number} balance")
    total = money(invoice.get("total"), f"invoice {number} total")
    status = invoice.get("status")
    zero = Decimal("0.00")
    if status == "void":
        ensure(balance == zero and total == zero, f"void invoice {number} has {total}/{balance}")
    elif status == "paid":
        ensure(balance == zero, f"paid invoice {number} has balance {balance}")
    else:
        ensure(balance > zero, f"open invoice {number} has balance {balance}")
    ensure(zero <= balance <= total, f"invoice {number}: balance {balance} not in 0.00..{total}")
    if invoice.get("last_synced_at") is not None:
        moment(invoice["last_synced_at"], f"invoice {number} last_synced_at")
    moment(invoice.get("updated_at"), f"invoice {number} updated_at")


def payments_agree(payments: list[dict[str, Any]], number: str) -> None:
    paid = [moment(p["paid_at"], f"payment {p['id']}") for p in payments]
    ensure(paid == sorted(paid), f"the payments of {number} are not oldest first")
    for payment in payments:
        ensure(payment["invoice_number"] == number, f"payment {payment['id']} of another invoice")
        failed = payment["transfer_status"] == "failed"
        ensure(
            (payment["transfer_error"] is not None) == failed,
            f"payment {payment['id']}: transfer_error set iff failed",
        )


def lifecycle_agrees(item: dict[str, Any], what: str) -> None:
    """Status and times of a sync run or record resync agree with each other."""
    name = f"{what} {item.get('id')}"
    status = item.get("status")
    created = moment(item.get("created_at"), f"{name} created_at")
    started = item.get("started_at")
    finished = item.get("finished_at")
    if status == "queued":
        ensure(started is None and finished is None, f"{name} is queued with start or end times")
    if status in ("running", "completed", "failed"):
        ensure(started is not None, f"{name} is {status} without started_at")
    if status in ("completed", "failed"):
        ensure(finished is not None, f"{name} is {status} without finished_at")
    else:
        ensure(finished is None, f"{name} is {status} with finished_at")
    ensure((item.get("error") is not None) == (status == "failed"), f"{name}: error set iff failed")
    if started is not None:
        began = moment(started, f"{name} started_at")
        ensure(created <= began, f"{name} started before it was created")
        if finished is not None:
            ensure(
                began <= moment(finished, f"{name} finished_at"), f"{name} ended before it began"
            )
