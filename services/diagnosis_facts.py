"""What the evidence about one invoice says, in plain facts and plain sentences. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from services.causes import AtRisk, Cause, Confidence, Diagnosis, RiskKind
from services.comparison import Evidence
from services.models import AccountingPayment, InvoiceRecord, PortalPayment, TransferStatus

CHANGE_TIME_RESOLUTION = timedelta(seconds=1)
"""QuickBooks dates a change to the second (``LastUpdatedTime``), the portal its syncs to the
microsecond: a change QuickBooks dates in the same second as the portal's last sync may have
come after it (e.g. a fix written just after a resync), so it counts as after."""

_SYMBOLS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "GBP": "£", "EUR": "€", "NZD": "NZ$"}


def money(amount: Decimal, currency: str | None = None) -> str:
    """`$10.00`, `-$1.50`, `12.00 CHF` (as commands.format.fmt_money writes it)."""
    code = (currency or "USD").upper()
    sign = "-" if amount < 0 else ""
    symbol = _SYMBOLS.get(code)
    digits = f"{abs(amount):,.2f}"
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {code}"


def day(moment: date | datetime) -> str:
    return f"{moment:%b %d}"


def when(moment: datetime | None) -> str:
    """`2026-11-30 14:05 UTC`: unambiguous in a log; a Slack message shows it in the reader's
    own time zone (commands.format.localize)."""
    return "never" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


class Facts:
    """Derived facts about one invoice's evidence, for the diagnosis rules."""

    def __init__(self, evidence: Evidence) -> None:
        self.evidence = evidence
        self.comparison = c = evidence.comparison
        self.number = c.number
        self.acct = c.accounting
        self.portal = c.portal
        self.currency = (self.acct.currency if self.acct else None) or (
            self.portal.currency if self.portal else None
        )
        self.customer = c.customer_name or "the customer"
        self.difference = c.difference
        self.portal_payments = evidence.portal_payments
        self.link_id = self.portal.external_id if self.portal else None
        ids = {r.id for r in evidence.records} | ({self.acct.id} if self.acct else set())
        link = evidence.link_record
        self.link_gone = bool(self.link_id) and evidence.link_checked and link is None
        self.link_broken = (
            self.acct is not None
            and bool(self.link_id)
            and self.link_id not in ids
            and (self.link_gone or (link is not None and link.number != self.number))
        )
        self.current_record: InvoiceRecord | None = next(
            (r for r in evidence.records if self.acct and r.id == self.acct.id), None
        )
        synced = c.portal_last_sync_at
        changed = self.acct.last_updated if self.acct else None
        self.stale = changed is not None and (
            synced is None or changed + CHANGE_TIME_RESOLUTION > synced
        )

    # Portal payments.
    def money_payments(self) -> list[PortalPayment]:
        """Portal payments QuickBooks does not have: failed or still pending."""
        return [p for p in self.portal_payments if p.status is not TransferStatus.POSTED]

    def posted_on_old_invoice(self) -> list[PortalPayment]:
        """Posted portal payments on the invoice the portal links to, when that one is gone."""
        if not (self.link_broken or self.link_gone):
            return []
        return [
            p
            for p in self.portal_payments
            if p.status is TransferStatus.POSTED and p.invoice_external_id in (None, self.link_id)
        ]

    def hidden_by_resync(self) -> list[AtRisk]:
        """The portal payments a resync would take out of view: real money."""
        old = self.posted_on_old_invoice()
        voided = self.current_record is not None and self.current_record.voided
        hidden = []
        for p in self.portal_payments:
            if p.status is TransferStatus.FAILED:
                kind, what = RiskKind.FAILED_PAYMENT, "failed to post"
            elif p.status is TransferStatus.PENDING:
                kind, what = RiskKind.PENDING_PAYMENT, "not posted yet"
            elif p in old:
                kind, what = RiskKind.ORPHANED_PAYMENT, "posted to the deleted invoice"
            elif voided:
                kind, what = RiskKind.ORPHANED_PAYMENT, "on the voided invoice"
            else:
                continue
            line = self._payment(p) + f" ({what})"
            hidden.append(AtRisk(kind=kind, reference=p.reference, amount=p.amount, what=line))
        return hidden

    def _payment(self, p: PortalPayment) -> str:
        return f"portal payment {p.reference} of {money(p.amount, self.currency)}"

    def transfer_lines(self) -> list[str]:
        lines = []
        for p in self.money_payments():
            head = f"Portal payment {p.reference} of {money(p.amount, self.currency)} on {day(p.paid_at)}"
            if p.status is TransferStatus.FAILED:
                lines.append(f"{head} failed to post to QuickBooks: {p.error or 'no reason given'}")
            else:
                lines.append(f"{head} has not reached QuickBooks yet (pending).")
        return lines

    def old_payment_lines(self) -> list[str]:
        return [
            f"Portal payment {p.reference} of {money(p.amount, self.currency)} on "
            f"{day(p.paid_at)} was posted to it."
            for p in self.posted_on_old_invoice()
        ]

    # Accounting payments and credits.
    def qbo_payment_like(self, reference: str) -> AccountingPayment | None:
        wanted = reference.strip().lower()
        for payment in self.evidence.payments:
            if payment.reference and payment.reference.strip().lower() == wanted:
                return payment
        return None

    def unapplied_credits(self) -> list[tuple[str, Decimal, str, str]]:
        """(what to apply, amount, sentence, reference) for every credit on the customer."""
        credits = []
        for memo in self.evidence.credit_memos:
            if memo.remaining > 0:
                name = f"credit memo {memo.number or memo.id}"
                credits.append(
                    (
                        name,
                        memo.remaining,
                        f"Credit memo {memo.number or memo.id} of {money(memo.total, self.currency)}"
                        f" on {self.customer} has {money(memo.remaining, self.currency)} not "
                        "applied to any invoice.",
                        memo.number or memo.id,
                    )
                )
        for payment in self.evidence.payments:
            if payment.unapplied > 0:
                name = f"payment {payment.reference or payment.id}"
                dated = f" ({day(payment.txn_date)})" if payment.txn_date else ""
                credits.append(
                    (
                        name,
                        payment.unapplied,
                        f"Payment {payment.reference or payment.id} of "
                        f"{money(payment.total, self.currency)} from {self.customer}{dated} has "
                        f"{money(payment.unapplied, self.currency)} applied to no invoice.",
                        payment.reference or payment.id,
                    )
                )
        return credits

    def stale_line(self) -> str:
        synced = self.comparison.portal_last_sync_at
        acct = self.acct
        assert acct is not None
        if self.portal is None:
            created = acct.created_at or acct.last_updated
            return (
                f"Created in QuickBooks on {when(created)}, after the portal's last sync "
                f"({when(synced)})."
            )
        if synced is None:
            return "The portal has never synced it."
        return (
            f"Changed in QuickBooks on {when(acct.last_updated)}, after the portal last "
            f"synced it ({when(synced)})."
        )


def checked_lines(f: Facts) -> tuple[str, ...]:
    """What was looked at, and what could not be read: said even when nothing was found."""
    e = f.evidence
    c = f.comparison
    lines = [
        f"QuickBooks last changed it {when(f.acct.last_updated) if f.acct else '(no invoice)'}; "
        f"the portal last synced it {when(c.portal_last_sync_at)}."
    ]
    if not e.gathered:
        lines.append("Only the balances and change times were compared.")
        return tuple(lines + list(e.gaps))
    statuses = [p.status.value for p in e.portal_payments]
    counted = ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))
    lines.append(f"Portal payments on it: {counted or 'none'}.")
    credits = f.unapplied_credits()
    lines.append(
        f"Unapplied credits and payments of {f.customer} in QuickBooks: "
        + (money(sum((c[1] for c in credits), Decimal(0)), f.currency) if credits else "none")
        + "."
    )
    if f.link_id:
        state = "gone" if f.link_gone else "current" if not f.link_broken else "another invoice"
        lines.append(f"The portal's link to QuickBooks: Id {f.link_id} ({state}).")
    voided = f.current_record is not None and f.current_record.voided
    lines.append(f"Voided in QuickBooks: {'yes' if voided else 'no'}.")
    if len(e.records) > 1:
        lines.append(f"QuickBooks has {len(e.records)} invoices numbered {f.number}.")
    return tuple(lines + [f"Could not check: {gap}" for gap in e.gaps])


def make(
    facts: Facts, cause: Cause, confidence: Confidence, summary: str, **kw: object
) -> Diagnosis:
    return Diagnosis(
        number=facts.number,
        cause=cause,
        confidence=confidence,
        summary=summary,
        **kw,
    )
