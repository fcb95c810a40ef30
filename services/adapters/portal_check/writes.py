"""The write checks, on one invoice the partner names: a record resync of it (lifecycle,
``Idempotency-Key`` replay, 409 while it runs), a full sync of its integration (replay,
409 on a second one, lifecycle), and the dismiss of a failed transfer refused where it must
be (409 ``not_failed`` for a posted payment, 404 for an unknown one: nothing dismissed)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from services.adapters.portal_check.listing import Findings, lifecycle_agrees
from services.adapters.portal_check.probe import Answer, CheckFailed
from services.adapters.portal_check.runner import Runner, Skipped, ensure, moment

ORDER = {"queued": 0, "running": 1, "completed": 2, "failed": 2}


class WriteChecks:
    def __init__(
        self,
        runner: Runner,
        found: Findings,
        number: str,
        *,
        poll_seconds: float = 1.0,
        finish_timeout: float = 600.0,
    ) -> None:
        self.runner, self.probe, self.found, self.number = runner, runner.probe, found, number
        self.poll_seconds, self.finish_timeout = poll_seconds, finish_timeout
        self.tag = "portal-check-" + secrets.token_hex(6)
        self.invoice: dict[str, Any] | None = None
        self.resync: dict[str, Any] | None = None
        self.resync_body = {"record_type": "invoice", "record_id": number}
        self.run: dict[str, Any] | None = None
        self.run_body = {"sync_from": datetime.now(UTC).date().isoformat()}
        self.integration_id: str | None = None

    async def run_all(self) -> None:
        check = self.runner.check
        await check("write.invoice", f"GET /invoices/{self.number}: 200 Invoice", self.invoice_read)
        await check(
            "write.record_resync",
            "202 RecordResync, queued or running, with Location",
            self.start_resync,
        )
        await check(
            "write.record_resync_replay",
            "the same Idempotency-Key again: the same answer, the same resync (no second one)",
            self.replay_resync,
        )
        await check(
            "write.idempotency_key_reused",
            "the same Idempotency-Key with another body: 422 idempotency_key_reused",
            self.key_reused,
        )
        await check(
            "write.record_resync_conflict",
            "another resync of the record while it runs: 409 resync_already_running, resync_id",
            self.resync_conflict,
        )
        await check(
            "write.record_resync_lifecycle",
            "queued -> running -> completed|failed, times in order, error iff failed",
            self.resync_lifecycle,
        )
        await check(
            "write.record_resync_effect",
            "after it completed: the invoice's last_synced_at at or after its started_at",
            self.resync_effect,
        )
        await check(
            "write.full_sync",
            "POST /integrations/{id}/syncs: 202 SyncRun, queued or running, with Location",
            self.start_full_sync,
        )
        await check(
            "write.full_sync_replay",
            "the same Idempotency-Key again: the same answer, the same run (no second one)",
            self.replay_full_sync,
        )
        await check(
            "write.full_sync_conflict",
            "a second full sync while one runs: 409 sync_already_running with its run_id",
            self.full_sync_conflict,
        )
        await check(
            "write.full_sync_lifecycle",
            "queued -> running -> completed|failed; records page to records_processed; "
            "first in the history",
            self.full_sync_lifecycle,
        )

        await check(
            "write.dismiss_not_failed",
            "POST /payments/{id}/dismiss of a posted payment: 409 not_failed, still listed",
            self.dismiss_not_failed,
        )
        await check(
            "write.dismiss_unknown",
            "POST /payments/{id}/dismiss of an unknown payment: 404 not_found",
            self.dismiss_unknown,
        )

    # The invoice.
    async def invoice_read(self) -> str | None:
        answer = await self.probe.call("GET", f"/invoices/{quote(self.number, safe='')}")
        if answer.status == 404:
            default = self.found.default_integration
            self.integration_id = default["id"] if default else None
            return "not in the portal yet: the record resync is to create it"
        answer.expect_status(200)
        self.invoice = self.probe.conform(answer, "Invoice")
        self.integration_id = self.invoice["integration_id"]
        return f"balance {self.invoice['balance']}, integration {self.integration_id}"

    # The record resync.
    async def start_resync(self) -> str | None:
        answer = await self.probe.call(
            "POST", "/record-resyncs", body=self.resync_body, idempotency_key=f"{self.tag}-rr"
        )
        if answer.status == 409:
            busy = self.probe.error(answer, 409, "resync_already_running")
            raise CheckFailed(f"the invoice already has a resync running ({busy.get('resync_id')})")
        answer.expect_status(202)
        resync = self.probe.conform(answer, "RecordResync")
        ensure(resync["status"] in ("queued", "running"), f"status {resync['status']}")
        ensure(
            (resync["record_type"], resync["record_id"]) == ("invoice", self.number),
            f"a resync of {resync['record_type']} {resync['record_id']}",
        )
        _located(answer, f"/record-resyncs/{resync['id']}")
        self.resync = resync
        return f"resync {resync['id']}"

    async def replay_resync(self) -> str | None:
        first = self._need(self.resync, "no record resync was started")
        answer = await self.probe.call(
            "POST", "/record-resyncs", body=self.resync_body, idempotency_key=f"{self.tag}-rr"
        )
        answer.expect_status(202)
        ensure(
            answer.body == first,
            f"the replay answered another body: {answer.brief()} (first: resync {first['id']})",
        )
        return None

    async def key_reused(self) -> str | None:
        self._need(self.resync, "no record resync was started")
        other = {"record_type": "invoice", "record_id": self.number + "X"}
        answer = await self.probe.call(
            "POST", "/record-resyncs", body=other, idempotency_key=f"{self.tag}-rr"
        )
        self.probe.error(answer, 422, "idempotency_key_reused")
        return None

    async def resync_conflict(self) -> str | None:
        first = self._need(self.resync, "no record resync was started")
        answer = await self.probe.call(
            "POST", "/record-resyncs", body=self.resync_body, idempotency_key=f"{self.tag}-rr2"
        )
        if answer.status == 202:
            current = await self._get_resync(first["id"])
            if current["status"] in ("queued", "running"):
                raise CheckFailed(
                    f"a second resync ({answer.body.get('id')}) started while "
                    f"{first['id']} was {current['status']}"
                )
            second = self.probe.conform(answer, "RecordResync")
            await self._finish("/record-resyncs", second["id"], "RecordResync")
            return "not observable: the first resync had already finished"
        error = self.probe.error(answer, 409, "resync_already_running")
        ensure(
            error.get("resync_id") == first["id"],
            f"resync_id {error.get('resync_id')!r}, not {first['id']!r}",
        )
        return None

    async def resync_lifecycle(self) -> str | None:
        first = self._need(self.resync, "no record resync was started")
        done = await self._finish("/record-resyncs", first["id"], "RecordResync")
        ensure(done["created_at"] == first["created_at"], "created_at changed")
        self.resync = done
        return f"{done['status']}" + (f": {done['error']}" if done.get("error") else "")

    async def resync_effect(self) -> str | None:
        done = self._need(self.resync, "no record resync was started")
        if done["status"] != "completed":
            raise Skipped(f"the record resync ended {done['status']}")
        answer = await self.probe.call("GET", f"/invoices/{quote(self.number, safe='')}")
        answer.expect_status(200)
        invoice = self.probe.conform(answer, "Invoice")
        began = moment(done["started_at"], "started_at")
        synced = invoice["last_synced_at"]
        ensure(synced is not None, "last_synced_at is still null")
        ensure(
            moment(synced, "last_synced_at") >= began,
            f"last_synced_at {synced} is before the resync began ({done['started_at']})",
        )
        return f"last_synced_at {synced}"

    # The full sync.
    async def start_full_sync(self) -> str | None:
        if self.integration_id is None:
            raise Skipped("no integration to sync")
        answer = await self._post_sync(f"{self.tag}-full")
        if answer.status == 409:  # one was already running: wait for it, then ours
            busy = self.probe.error(answer, 409, "sync_already_running")
            await self._finish("/sync-runs", str(busy.get("run_id")), "SyncRun")
            answer = await self._post_sync(f"{self.tag}-full")
        answer.expect_status(202)
        run = self.probe.conform(answer, "SyncRun")
        ensure(run["status"] in ("queued", "running"), f"status {run['status']}")
        ensure(run["integration_id"] == self.integration_id, "a run of another integration")
        ensure(run["sync_from"] == self.run_body["sync_from"], f"sync_from {run['sync_from']}")
        _located(answer, f"/sync-runs/{run['id']}")
        self.run = run
        return f"run {run['id']}"

    async def replay_full_sync(self) -> str | None:
        first = self._need(self.run, "no full sync was started")
        answer = await self._post_sync(f"{self.tag}-full")
        answer.expect_status(202)
        ensure(answer.body == first, f"the replay answered another body: {answer.brief()}")
        return None

    async def full_sync_conflict(self) -> str | None:
        first = self._need(self.run, "no full sync was started")
        answer = await self._post_sync(f"{self.tag}-full2")
        if answer.status == 202:
            current = await self._get("/sync-runs", first["id"], "SyncRun")
            if current["status"] in ("queued", "running"):
                raise CheckFailed(f"a second full sync started while {first['id']} was running")
            second = self.probe.conform(answer, "SyncRun")
            await self._finish("/sync-runs", second["id"], "SyncRun")
            return "not observable: the first run had already finished"
        error = self.probe.error(answer, 409, "sync_already_running")
        ensure(error.get("run_id") == first["id"], f"run_id {error.get('run_id')!r}")
        return None

    async def full_sync_lifecycle(self) -> str | None:
        first = self._need(self.run, "no full sync was started")
        done = await self._finish("/sync-runs", first["id"], "SyncRun")
        answer = await self.probe.call(
            "GET", f"/integrations/{self.integration_id}/syncs", params={"limit": "1"}
        )
        answer.expect_status(200)
        latest = self.probe.conform(answer, "SyncRunList")["sync_runs"]
        ensure(bool(latest) and latest[0]["id"] == done["id"], "not first in the sync history")
        records = 0
        cursor: str | None = None
        while True:
            params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
            page = await self.probe.call("GET", f"/sync-runs/{done['id']}/records", params=params)
            page.expect_status(200)
            body = self.probe.conform(page, "ProcessedRecordPage")
            records += len(body["records"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        ensure(
            records == done["records_processed"],
            f"{records} records listed, records_processed says {done['records_processed']}",
        )
        if done["status"] == "completed":
            answer = await self.probe.call("GET", f"/integrations/{self.integration_id}")
            integration = self.probe.conform(answer, "Integration")
            last = integration["last_successful_sync_at"]
            ensure(
                last is not None
                and moment(last, "last_successful_sync_at")
                >= moment(done["finished_at"], "finished_at"),
                f"last_successful_sync_at {last} is before the run finished",
            )
        return f"{done['status']}, {records} records"

    # The dismiss: only refusals are tried, so nothing is ever dismissed.
    async def dismiss_not_failed(self) -> str | None:
        answer = await self.probe.call(  # posted only: a pending one could fail meanwhile
            "GET", "/payments", params={"transfer_status": "posted", "limit": "1"}
        )
        answer.expect_status(200)
        posted = self.probe.conform(answer, "PaymentPage")["payments"]
        if not posted:
            raise Skipped("the portal lists no posted payment to try")
        payment = posted[0]
        answer = await self._dismiss(payment["id"], f"{self.tag}-dismiss")
        self.probe.error(answer, 409, "not_failed")
        number = payment["invoice_number"]
        listed = await self.probe.call("GET", f"/invoices/{quote(number, safe='')}/payments")
        listed.expect_status(200)
        ids = [p["id"] for p in self.probe.conform(listed, "InvoicePayments")["payments"]]
        ensure(payment["id"] in ids, f"payment {payment['id']} is no longer listed")
        return f"payment {payment['id']}"

    async def dismiss_unknown(self) -> str | None:
        absent = "portal-check-absent-" + self.tag
        self.probe.error(await self._dismiss(absent, f"{self.tag}-dismiss404"), 404, "not_found")
        return None

    async def _dismiss(self, payment_id: str, key: str) -> Answer:
        return await self.probe.call(
            "POST", f"/payments/{quote(payment_id, safe='')}/dismiss", body={}, idempotency_key=key
        )

    # Helpers.
    async def _post_sync(self, key: str) -> Answer:
        return await self.probe.call(
            "POST",
            f"/integrations/{self.integration_id}/syncs",
            body=self.run_body,
            idempotency_key=key,
        )

    async def _get(self, path: str, ident: str, schema: str) -> dict[str, Any]:
        answer = await self.probe.call("GET", f"{path}/{ident}")
        answer.expect_status(200)
        item: dict[str, Any] = self.probe.conform(answer, schema)
        lifecycle_agrees(item, schema)
        return item

    async def _get_resync(self, ident: str) -> dict[str, Any]:
        return await self._get("/record-resyncs", ident, "RecordResync")

    async def _finish(self, path: str, ident: str, schema: str) -> dict[str, Any]:
        """Poll until finished; the status must only move forward."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.finish_timeout
        seen: list[str] = []
        while True:
            item = await self._get(path, ident, schema)
            status = item["status"]
            if seen and ORDER[status] < ORDER[seen[-1]]:
                raise CheckFailed(f"{schema} {ident} went back from {seen[-1]} to {status}")
            if not seen or seen[-1] != status:
                seen.append(status)
            if status in ("completed", "failed"):
                return item
            if loop.time() > deadline:
                raise CheckFailed(
                    f"{schema} {ident} still {status} after {self.finish_timeout:g} s"
                )
            await asyncio.sleep(self.poll_seconds)

    @staticmethod
    def _need(item: dict[str, Any] | None, why: str) -> dict[str, Any]:
        if item is None:
            raise Skipped(why)
        return item


def _located(answer: Answer, path: str) -> None:
    location = answer.headers.get("location", "")
    ensure(location.endswith(path), f"Location {location!r} does not end with {path}")
