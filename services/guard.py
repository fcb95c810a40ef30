"""The one guard on every write to the portal.

Whatever asks for a write (a typed command, a button, a digest line, an alert, a resumed
job), the resync runner passes through here at the moment of the write: the guard re-reads
the evidence of everything the write will touch and refuses (``NeedsAcknowledgement``)
unless the requester acknowledged exactly the amounts it would take out of view. An
acknowledgement is a fingerprint of those amounts: if the evidence changed since (a new
failed payment, a credit applied), the fingerprint no longer matches and the person is
asked again, naming the amounts as they are now. Evidence that cannot be read refuses the
write (``EvidenceUnavailable``): money nobody could see is never overwritten.

Entry points call ``assess_*`` first to show the person what a write would hide and ask
for the acknowledgement; the runner calls ``authorize`` just before it writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from services.causes import AtRisk
from services.check import examine_invoice, pick_integration
from services.comparison import DEFAULT_MONEY_TOLERANCE, Comparison
from services.diagnosis import diagnose
from services.errors import BotError, UpstreamError, UsageError, in_words
from services.evidence import gather_evidence
from services.jobs import Job, JobKind
from services.models import Integration, RecordType, utcnow
from services.ports import AccountingSystem, BillingPortal
from services.reconcile import compare

LONG_AGO_DAYS = 365
"""A full resync from further back than this re-reads so much that the person is told how
many records and asked again."""
MAX_LISTED = 10_000
"""At most this many changed invoices are looked at for a full resync's blast radius."""


@dataclass(frozen=True)
class Exposure:
    """One amount a write would take out of view, on one invoice."""

    invoice: str
    risk: AtRisk

    @property
    def key(self) -> str:
        r = self.risk
        return f"{self.invoice}|{r.kind.value}|{r.reference}|{r.amount}"

    @property
    def line(self) -> str:
        return f"invoice {self.invoice}: {self.risk.what}"


@dataclass(frozen=True)
class Assessment:
    """What a write would touch and take out of view, as read just now."""

    exposures: tuple[Exposure, ...]
    comparison: Comparison | None = None
    """The invoice's comparison (record resync of an invoice)."""
    since: date | None = None
    records: int | None = None
    """How many invoices a full resync re-reads (from QuickBooks' change times)."""
    long_ago: bool = False

    @property
    def fingerprint(self) -> str | None:
        """What an acknowledgement must name; None when there is nothing to acknowledge."""
        keys = sorted(e.key for e in self.exposures)
        if self.long_ago:
            keys.append(f"records>={self.records}")
        if not keys:
            return None
        return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]

    def acknowledged(self, fingerprint: str | None) -> bool:
        return self.fingerprint is None or self.fingerprint == fingerprint

    @property
    def amount(self) -> Decimal:
        return sum((e.risk.amount for e in self.exposures), Decimal(0))


class NeedsAcknowledgement(BotError):
    """The write would take money out of view that the requester has not acknowledged."""

    def __init__(self, message: str, *, assessment: Assessment) -> None:
        super().__init__(message)
        self.assessment = assessment


class EvidenceUnavailable(BotError):
    """The evidence could not be re-read: nothing is written blind."""


@dataclass
class WriteGuard:
    accounting: AccountingSystem
    portal: BillingPortal
    tolerance: Decimal = DEFAULT_MONEY_TOLERANCE
    clock: Callable[[], datetime] = utcnow

    async def assess_invoice(self, number: str) -> Assessment:
        """A record resync of the invoice: its exposures, from evidence read now."""
        try:
            comparison, _ = await examine_invoice(
                number,
                accounting=self.accounting,
                portal=self.portal,
                clock=self.clock,
                tolerance=self.tolerance,
            )
        except UpstreamError as exc:
            raise EvidenceUnavailable(
                f"I could not re-read invoice {number}, so nothing was sent to the portal: "
                + in_words(exc)
            ) from exc
        diagnosis = comparison.diagnosis
        if diagnosis is not None and not diagnosis.complete:
            raise EvidenceUnavailable(
                f"Part of the evidence on invoice {number} could not be read just now "
                f"({'; '.join(g for g in diagnosis.checked if g.startswith('Could not'))}), "
                "so nothing was sent to the portal."
            )
        risks = diagnosis.at_risk if diagnosis is not None else ()
        return Assessment(tuple(Exposure(number, r) for r in risks), comparison=comparison)

    async def assess_full(self, integration_id: str, since: date) -> Assessment:
        """A full resync from ``since``: the invoices it re-reads (changed in QuickBooks
        since then) joined with the portal's side and its payments; every one whose resync
        would hide money is named."""
        today = self.clock().date()
        if since > today:
            raise UsageError(f"The sync date {since:%b %d, %Y} is in the future.")
        start = datetime.combine(since, time(), tzinfo=UTC)
        try:
            integration = pick_integration(await self.portal.list_integrations(), integration_id)
            before_connection(integration, since)
            changed = await self.accounting.list_changed_invoices(since=start, limit=MAX_LISTED)
            long_ago = (today - since).days > LONG_AGO_DAYS
            records = (
                await self.accounting.count_changed_invoices(since=start)
                if len(changed) >= MAX_LISTED
                else len(changed)
            )
            mirrored = await self.portal.get_invoices([i.number for i in changed])
        except UpstreamError as exc:
            raise EvidenceUnavailable(
                f"I could not list what a full resync from {since:%b %d, %Y} would re-read, so "
                "nothing was sent to the portal: " + in_words(exc)
            ) from exc
        synced = integration.last_successful_sync_at if integration else None
        now = self.clock()
        comparisons = [
            compare(
                i.number,
                i,
                mirrored.get(i.number),
                checked_at=now,
                portal_last_sync_at=synced,
                tolerance=self.tolerance,
            )
            for i in changed
        ]
        differing = [c for c in comparisons if c.out_of_sync]
        exposures: list[Exposure] = []
        for chunk in (differing[i : i + 30] for i in range(0, len(differing), 30)):
            evidence = await gather_evidence(
                chunk, accounting=self.accounting, portal=self.portal, tolerance=self.tolerance
            )
            for number, item in evidence.items():
                if item.gaps:
                    raise EvidenceUnavailable(
                        f"Part of the evidence on invoice {number} could not be read "
                        f"({'; '.join(item.gaps)}), so the full resync was not started."
                    )
                exposures.extend(Exposure(number, r) for r in diagnose(item).at_risk)
        return Assessment(tuple(exposures), since=since, records=records, long_ago=long_ago)

    async def assess(self, job: Job) -> Assessment:
        if job.kind is JobKind.FULL:
            assert job.integration_id is not None and job.sync_from is not None
            return await self.assess_full(job.integration_id, job.sync_from)
        if job.record_type is RecordType.INVOICE:
            return await self.assess_invoice(job.target)
        return Assessment(())  # a company or contact carries no balance

    async def authorize(self, job: Job) -> Assessment:
        """At the moment of the write: the job's write, allowed only if the requester
        acknowledged exactly what it takes out of view now."""
        assessment = await self.assess(job)
        if not assessment.acknowledged(job.acknowledged):
            raise NeedsAcknowledgement(refusal(assessment), assessment=assessment)
        return assessment


def before_connection(integration: Integration | None, since: date) -> None:
    """Refuse a full resync from before the integration was connected to the portal: the
    portal holds nothing from it before then. (No portal text in the answer: it is shown
    as Slack mrkdwn.)"""
    connected = integration.connected_at if integration is not None else None
    if connected is not None and since < connected.date():
        raise UsageError(
            f"The integration was connected to the portal on {connected:%b %d, %Y}, and the "
            f"portal holds nothing from it before then: a full resync from {since:%b %d, %Y} "
            f"cannot be run. Pick {connected:%Y-%m-%d} or later."
        )


def refusal(assessment: Assessment) -> str:
    """Why a write needs an acknowledgement, naming each amount (the first ten)."""
    parts = []
    if assessment.exposures:
        listed = "; ".join(e.line for e in assessment.exposures[:10])
        more = len(assessment.exposures) - 10
        parts.append(
            "It would take out of view " + listed + (f"; and {more} more" if more > 0 else "")
        )
    if assessment.long_ago:
        parts.append(
            f"It reaches back to {assessment.since:%b %d, %Y} and re-reads "
            f"{assessment.records:,} invoices"
        )
    return ". ".join(parts) + "."
