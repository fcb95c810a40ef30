"""The read-only checks: nothing here changes the portal."""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from services.adapters.portal.session import segment
from services.adapters.portal_check.listing import (
    ABSENT_NUMBER,
    Findings,
    Walk,
    lifecycle_agrees,
    payments_agree,
    status_agrees,
    walk,
)
from services.adapters.portal_check.probe import CheckFailed
from services.adapters.portal_check.runner import Runner, Skipped, ensure, moment


class ReadChecks:
    def __init__(self, runner: Runner, *, page_size: int = 100) -> None:
        self.runner, self.probe = runner, runner.probe
        self.page_size = page_size
        self.found = Findings()
        self._invoices: Walk | None = None

    async def run(self) -> Findings:
        check = self.runner.check
        await check("auth.missing_key", "401 unauthorized without X-API-Key", self.missing_key)
        await check("auth.wrong_key", "401 unauthorized for a wrong API key", self.wrong_key)
        await check(
            "errors.precedence",
            "401 before 422 and 404 (wrong key), 422 before 404 (malformed number)",
            self.precedence,
        )
        await check(
            "integrations.list",
            "200 IntegrationList, unique ids, the default first and the others by id",
            self.integrations,
        )
        await check(
            "integrations.get",
            "GET /integrations/{id} equal to the listed integration; 404 not_found when unknown",
            self.integration_each,
        )
        await check(
            "invoices.schema",
            "every invoice of every page of GET /invoices matches Invoice (money as strings)",
            self.invoices_schema,
        )
        await check(
            "invoices.paging",
            f"pages of at most {self.page_size}, numbers ascending, each once, no cursor twice, "
            "ending with next_cursor null",
            self.invoices_paging,
        )
        await check(
            "invoices.status_balance",
            "open iff balance > 0.00, paid at 0.00, void with total and balance 0.00, "
            "0.00 <= balance <= total",
            self.status_balance,
        )
        await check(
            "invoices.open_filter",
            "GET /invoices?status=open lists only open invoices, every open one",
            self.open_filter,
        )
        await check(
            "invoices.get",
            "GET /invoices/{number} equal to the listed invoice; 404 not_found when absent",
            self.invoice_get,
        )
        await check(
            "reads.idempotent",
            "the same read twice gives the same answer",
            self.reads_idempotent,
        )
        await check(
            "errors.validation",
            "422 validation_error for limit 1001, an unknown parameter, a cursor never returned, "
            "an empty look-up",
            self.validation,
        )
        await check(
            "errors.content_type",
            "415 unsupported_media_type for a POST body that is not application/json",
            self.content_type,
        )
        await check(
            "invoices.lookup",
            "POST /invoices/lookup: found ones in request order each once, the others in missing",
            self.lookup,
        )
        await check(
            "payments.invoice",
            "GET /invoices/{number}/payments: InvoicePayments, oldest first; 404 when absent",
            self.invoice_payments,
        )
        await check("payments.embedded", "GET /invoices/{number}?include=payments (1.2): the "
                    "same payments, or 422 (1.1)", self.embedded_payments)  # fmt: skip
        await check(
            "payments.lookup",
            "POST /payments/lookup: PaymentLookupResponse, the same payments as per invoice",
            self.payment_lookup,
        )
        await check(
            "payments.paging",
            "every page of GET /payments matches PaymentPage, each payment once, no cursor twice",
            self.payments_paging,
        )
        await check(
            "syncs.history",
            "GET /integrations/{id}/syncs: SyncRunList, newest first, statuses and times agree",
            self.history,
        )
        await check(
            "syncs.records",
            "GET /sync-runs/{id} equal to the history's; its records page to records_processed",
            self.run_records,
        )
        await check(
            "errors.not_found",
            "404 not_found for an unknown sync run and record resync",
            self.not_found,
        )
        return self.found

    # Authentication and errors.
    async def missing_key(self) -> str | None:
        self.probe.error(await self.probe.call("GET", "/integrations", send_key=False), 401)
        return None

    async def wrong_key(self) -> str | None:
        wrong = "portal-check-" + secrets.token_hex(8)
        answer = await self.probe.call("GET", "/integrations", key=wrong)
        self.probe.error(answer, 401, "unauthorized")
        return None

    async def precedence(self) -> str | None:
        wrong = "portal-check-" + secrets.token_hex(8)
        probe = self.probe
        probe.error(await probe.call("GET", "/invoices", params={"limit": "0"}, key=wrong), 401)
        probe.error(await probe.call("GET", f"/invoices/{ABSENT_NUMBER}", key=wrong), 401)
        malformed = "9" * 22  # one character too long to be an invoice number
        probe.error(await probe.call("GET", f"/invoices/{malformed}"), 422)
        return None

    async def validation(self) -> str | None:
        probe = self.probe
        for params in ({"limit": "1001"}, {"portal_check": "1"}, {"cursor": "bm9wZQ"}):
            answer = await probe.call("GET", "/invoices", params=params)
            probe.error(answer, 422, "validation_error")
        answer = await probe.call("POST", "/invoices/lookup", body={"numbers": []})
        probe.error(answer, 422, "validation_error")
        return None

    async def content_type(self) -> str | None:
        answer = await self.probe.call(
            "POST", "/invoices/lookup", body=b"numbers=11260", content_type="text/plain"
        )
        self.probe.error(answer, 415, "unsupported_media_type")
        return None

    async def not_found(self) -> str | None:
        tag = secrets.token_hex(6)
        self.probe.error(await self.probe.call("GET", f"/sync-runs/run-{tag}"), 404, "not_found")
        answer = await self.probe.call("GET", f"/record-resyncs/rr-{tag}")
        self.probe.error(answer, 404, "not_found")
        return None

    # Integrations.
    async def integrations(self) -> str | None:
        answer = await self.probe.call("GET", "/integrations")
        answer.expect_status(200)
        body = self.probe.conform(answer, "IntegrationList")
        found: list[dict[str, Any]] = body["integrations"]
        self.found.integrations = found
        ensure(bool(found), "GET /integrations lists no integration")
        ids = [i["id"] for i in found]
        ensure(len(ids) == len(set(ids)), f"integration ids repeat: {ids}")
        ensure(ids[1:] == sorted(ids[1:]), f"after the default, not ordered by id: {ids}")
        ensure(
            any(i["kind"] == "accounting" for i in found),
            "no integration of kind accounting (the bot needs one)",
        )
        return f"{len(found)} integration(s), default {ids[0]}"

    async def integration_each(self) -> str | None:
        if not self.found.integrations:
            raise Skipped("no integration listed")
        for listed in self.found.integrations[:5]:
            answer = await self.probe.call("GET", f"/integrations/{listed['id']}")
            answer.expect_status(200)
            one = self.probe.conform(answer, "Integration")
            ensure(one == listed, f"{answer.request} differs from the listing: {answer.brief()}")
        answer = await self.probe.call("GET", f"/integrations/int-check-{secrets.token_hex(6)}")
        self.probe.error(answer, 404, "not_found")
        return None

    # Invoices.
    async def _invoice_walk(self) -> Walk:
        if self._invoices is None:
            self._invoices = await walk(
                self.probe, "/invoices", "invoices", "InvoicePage", {}, self.page_size
            )
            items = self._invoices.items
            self.found.invoice_count = len(items)
            self.found.invoices = items[:3] + items[-3:] if len(items) > 6 else list(items)
        return self._invoices

    async def invoices_schema(self) -> str | None:
        listing = await self._invoice_walk()
        if listing.schema_problems:
            raise CheckFailed(listing.schema_problems[0])
        return f"{len(listing.items)} invoices in {listing.pages} pages"

    async def invoices_paging(self) -> str | None:
        listing = await self._invoice_walk()
        if listing.paging_problems:
            raise CheckFailed(listing.paging_problems[0])
        numbers = [str(i.get("number")) for i in listing.items]
        for before, after in itertools.pairwise(numbers):
            if not before < after:
                raise CheckFailed(f"invoice {after!r} comes after {before!r}: not ascending, once")
        return f"{len(numbers)} invoices in {listing.pages} pages"

    async def status_balance(self) -> str | None:
        listing = await self._invoice_walk()
        if listing.schema_problems:
            raise Skipped("the invoices do not match the schema")
        for invoice in listing.items:
            status_agrees(invoice)
        return None

    async def open_filter(self) -> str | None:
        listing = await self._invoice_walk()
        if listing.schema_problems or listing.paging_problems:
            raise Skipped("the full listing is broken")
        opened = await walk(
            self.probe, "/invoices", "invoices", "InvoicePage", {"status": "open"}, self.page_size
        )
        for problems in (opened.schema_problems, opened.paging_problems):
            if problems:
                raise CheckFailed(problems[0])
        wrong = [i["number"] for i in opened.items if i.get("status") != "open"]
        ensure(not wrong, f"status=open lists invoices that are not open: {wrong[:5]}")
        expected = {i["number"] for i in listing.items if i.get("status") == "open"}
        missing = sorted(expected - {i["number"] for i in opened.items})
        ensure(not missing, f"status=open leaves out open invoices: {missing[:5]}")
        return f"{len(opened.items)} open"

    async def invoice_get(self) -> str | None:
        number = self.found.sample_number()
        for listed in self.found.invoices[:2]:
            answer = await self.probe.call("GET", f"/invoices/{segment(listed['number'])}")
            answer.expect_status(200)
            one = self.probe.conform(answer, "Invoice")
            ensure(one == listed, f"{answer.request} differs from the listing: {answer.brief()}")
        answer = await self.probe.call("GET", f"/invoices/{ABSENT_NUMBER}")
        self.probe.error(answer, 404, "not_found")
        return f"e.g. {number}"

    async def reads_idempotent(self) -> str | None:
        paths = ["/integrations"]
        if self.found.invoices:
            paths.append(f"/invoices/{segment(self.found.invoices[0]['number'])}")
        for path in paths:
            first, second = await self.probe.call("GET", path), await self.probe.call("GET", path)
            ensure(
                (first.status, first.body) == (second.status, second.body),
                f"GET {path} answered differently twice: {first.brief()} / {second.brief()}",
            )
        return None

    async def lookup(self) -> str | None:
        number = self.found.sample_number()
        numbers = [number, ABSENT_NUMBER, number]
        answer = await self.probe.call("POST", "/invoices/lookup", body={"numbers": numbers})
        answer.expect_status(200)
        body = self.probe.conform(answer, "LookupResponse")
        got = [i["number"] for i in body["invoices"]]
        ensure(got == [number], f"invoices {got}, not [{number!r}]")
        ensure(body["missing"] == [ABSENT_NUMBER], f"missing {body['missing']}")
        ensure(body["invoices"][0] == self.found.invoices[0], "differs from the listed invoice")
        return None

    # Payments.
    async def invoice_payments(self) -> str | None:
        number = self.found.sample_number()
        answer = await self.probe.call("GET", f"/invoices/{segment(number)}/payments")
        answer.expect_status(200)
        body = self.probe.conform(answer, "InvoicePayments")
        ensure(body["invoice_number"] == number, f"invoice_number {body['invoice_number']!r}")
        payments_agree(body["payments"], number)
        answer = await self.probe.call("GET", f"/invoices/{ABSENT_NUMBER}/payments")
        self.probe.error(answer, 404, "not_found")
        return None

    async def embedded_payments(self) -> str | None:
        number = self.found.sample_number()
        path = f"/invoices/{segment(number)}"
        answer = await self.probe.call("GET", path, params={"include": "payments"})
        if answer.status == 422:
            return "not offered (contract 1.1): the bot asks in two requests"
        answer.expect_status(200)
        body = self.probe.conform(answer, "InvoiceWithPayments")
        one = await self.probe.call("GET", f"{path}/payments")
        theirs = one.body.get("payments") if isinstance(one.body, dict) else None
        ensure(body["payments"] == theirs, "differs from GET /invoices/{number}/payments")
        return None

    async def payment_lookup(self) -> str | None:
        number = self.found.sample_number()
        answer = await self.probe.call(
            "POST", "/payments/lookup", body={"numbers": [number, ABSENT_NUMBER]}
        )
        answer.expect_status(200)
        body = self.probe.conform(answer, "PaymentLookupResponse")
        ensure(body["missing"] == [ABSENT_NUMBER], f"missing {body['missing']}")
        one = await self.probe.call("GET", f"/invoices/{segment(number)}/payments")
        one.expect_status(200)
        if number not in body.get("deferred", []):
            theirs = one.body.get("payments") if isinstance(one.body, dict) else None
            ensure(
                body["payments"] == theirs,
                "the look-up's payments differ from GET /invoices/{number}/payments",
            )
        return None

    async def payments_paging(self) -> str | None:
        listing = await walk(self.probe, "/payments", "payments", "PaymentPage", {}, self.page_size)
        for problems in (listing.schema_problems, listing.paging_problems):
            if problems:
                raise CheckFailed(problems[0])
        ids = [p["id"] for p in listing.items]
        ensure(len(ids) == len(set(ids)), "a payment is listed twice")
        since = datetime.now(UTC) - timedelta(days=30)
        params = {
            "transfer_status": "failed",
            "transferred_since": since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        failed = await walk(
            self.probe, "/payments", "payments", "PaymentPage", params, self.page_size
        )
        for payment in failed.items:
            ensure(payment.get("transfer_status") == "failed", f"{payment.get('id')} not failed")
            when = moment(payment.get("transferred_at"), f"payment {payment.get('id')}")
            ensure(when >= since, f"{payment.get('id')} transferred before transferred_since")
        return f"{len(ids)} payments, {len(failed.items)} failed in 30 days"

    # Sync history.
    async def history(self) -> str | None:
        default = self.found.default_integration
        if default is None:
            raise Skipped("no integration listed")
        answer = await self.probe.call(
            "GET", f"/integrations/{default['id']}/syncs", params={"limit": "5"}
        )
        answer.expect_status(200)
        runs: list[dict[str, Any]] = self.probe.conform(answer, "SyncRunList")["sync_runs"]
        ensure(len(runs) <= 5, f"{len(runs)} runs for limit 5")
        created = [moment(r["created_at"], f"run {r['id']}") for r in runs]
        ensure(created == sorted(created, reverse=True), "the runs are not newest first")
        for run in runs:
            ensure(
                run["integration_id"] == default["id"], f"run {run['id']} of another integration"
            )
            lifecycle_agrees(run, "run")
        self.found.runs = runs
        return f"{len(runs)} recent run(s)"

    async def run_records(self) -> str | None:
        finished = [r for r in self.found.runs if r["status"] in ("completed", "failed")]
        if not finished:
            raise Skipped("the history has no finished run")
        run = finished[0]
        answer = await self.probe.call("GET", f"/sync-runs/{run['id']}")
        answer.expect_status(200)
        ensure(self.probe.conform(answer, "SyncRun") == run, "differs from the history's run")
        records = await walk(
            self.probe,
            f"/sync-runs/{run['id']}/records",
            "records",
            "ProcessedRecordPage",
            {},
            self.page_size,
        )
        for problems in (records.schema_problems, records.paging_problems):
            if problems:
                raise CheckFailed(problems[0])
        ensure(
            len(records.items) == run["records_processed"],
            f"{len(records.items)} records listed, records_processed says {run['records_processed']}",
        )
        return f"run {run['id']}: {len(records.items)} records"
