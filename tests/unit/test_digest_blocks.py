"""The digest's Slack messages: summary, all-clear, failure, the thread within Block Kit's
limits, the buttons the existing listeners handle, and the CSV file."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from commands.actions import ActionId, ButtonState
from commands.blocks import MAX_BLOCKS, MAX_SECTION
from commands.digest_blocks import (
    BUTTONED,
    discrepancies_csv,
    discrepancy_message,
    failed_message,
    needs_csv,
    summary_message,
    thread_messages,
)
from services.causes import Cause
from services.digest import DigestResult, Discrepancy, Kind

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY = date(2026, 11, 30)


def stale(
    number: str, qbo: str, portal: str, *, changed: timedelta = timedelta(hours=5)
) -> Discrepancy:
    return Discrepancy(
        number=number,
        customer="Best Tackle",
        currency="USD",
        accounting_balance=Decimal(qbo),
        portal_balance=Decimal(portal),
        accounting_changed=NOW - changed,
        portal_synced=NOW - timedelta(days=4),
    )


def missing_in_qbo(number: str, portal: str) -> Discrepancy:
    return Discrepancy(
        number=number,
        customer='=HYPERLINK("http://evil")',
        currency="USD",
        accounting_balance=None,
        portal_balance=Decimal(portal),
        accounting_changed=None,
        portal_synced=NOW - timedelta(days=4),
    )


def result(*found: Discrepancy, open_invoices: int = 300, skipped: int = 2) -> DigestResult:
    return DigestResult(
        started_at=NOW,
        duration=timedelta(seconds=2.34),
        open_invoices=open_invoices,
        compared=open_invoices - skipped,
        skipped_recent=skipped,
        recent_window=timedelta(minutes=10),
        discrepancies=tuple(sorted(found, key=lambda d: -d.amount)),
    )


def dump(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks)


def buttons(message_kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for b in message_kwargs["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["type"] == "button"
    ]


def test_summary_counts_amount_skipped_and_time() -> None:
    paid = Discrepancy("11264", "Geeta", "USD", Decimal("0.00"), Decimal("89.50"), NOW, NOW)
    digest = result(stale("11260", "50.00", "40.00"), paid, missing_in_qbo("9", "30.00"))
    causes = {"11264": Cause.INVOICE_VOIDED, "11260": Cause.STALE_COPY}
    message = summary_message(
        digest, day=DAY, requested_by="U0ALICE001", causes=causes, rechecks_failed=1
    ).as_kwargs()
    text = dump(message["blocks"])
    assert "3 of 300 open invoices differ" in text
    assert "$129.50 at stake" in text
    assert "2 skipped as changed in the last 10 minutes" in text
    assert "scan took 2.3s" in text and "<@U0ALICE001>" in text
    # One taxonomy: the thread's causes, and what was not re-checked.
    assert "Invoice voided in QuickBooks*\\n1" in text
    assert "Stale copy*\\n1" in text
    assert "Cause not re-checked*\\n1" in text
    assert "1 could not be re-checked" in text
    assert "Missing in the portal" not in text  # no zero rows
    assert buttons(message) == []


def test_all_clear_and_failure() -> None:
    clear = summary_message(result(skipped=0), day=DAY, requested_by=None).as_kwargs()
    assert "All clear" in dump(clear["blocks"]) and "Scheduled digest" in dump(clear["blocks"])
    # Anything skipped: not "All clear", but what was compared and what was not.
    partly = dump(summary_message(result(), day=DAY, requested_by=None).as_kwargs()["blocks"])
    assert "All clear" not in partly
    assert "None differ among 298 compared; 2 skipped" in partly
    assert thread_messages(result(), now=NOW) == []
    failed = failed_message("QuickBooks Online did not answer.", day=DAY, requested_by=None)
    assert "could not finish" in failed.text
    assert "Nothing is reported as checked" in dump(failed.as_kwargs()["blocks"])


def test_each_discrepancy_gets_the_existing_resync_buttons() -> None:
    message = discrepancy_message(
        stale("11262", "75.00", "60.00", changed=timedelta(days=3)), now=NOW
    )
    first, second = buttons(message.as_kwargs())
    assert first["action_id"] == ActionId.RESYNC_INVOICE.value
    assert ButtonState.load(first["value"]).invoice == "11262"
    assert second["action_id"] == ActionId.RESYNC_FULL.value
    state = ButtonState.load(second["value"])
    assert state.invoice == "11262" and state.since == date(2026, 11, 26)  # the day before
    assert "out by *$15.00*" in message.blocks[0].to_dict()["text"]["text"]


def test_no_buttons_where_a_resync_cannot_help_or_a_button_cannot_carry_the_number() -> None:
    assert buttons(discrepancy_message(missing_in_qbo("9", "30.00"), now=NOW).as_kwargs()) == []
    odd = discrepancy_message(stale("INV 7#", "5.00", "4.00"), now=NOW).as_kwargs()
    assert buttons(odd) == [] and "Entities tab" in dump(odd["blocks"])


def test_a_long_list_stays_within_slack_limits_and_goes_to_a_csv() -> None:
    found = [stale(str(20000 + i), f"{1000 - i}.00", "1.00") for i in range(500)]
    digest = result(*found, open_invoices=10_000)
    messages = thread_messages(digest, now=NOW)
    assert len(messages) == BUTTONED + 2  # the buttoned ones, one text list, the CSV note
    assert needs_csv(digest)
    for message in messages:
        kwargs = message.as_kwargs()
        assert len(kwargs["blocks"]) <= MAX_BLOCKS
        assert len(json.dumps(kwargs)) < 13_000
        for block in kwargs["blocks"]:
            if block["type"] == "section" and "text" in block:
                assert len(block["text"]["text"]) <= MAX_SECTION
    # Worst first: the first thread message is the largest amount.
    assert "20000" in messages[0].text and "20001" in messages[1].text
    listed = dump(messages[BUTTONED].as_kwargs()["blocks"])
    assert "of 500 (no buttons" in listed and "20030" in listed and "20129" not in listed
    assert "full list of 500" in messages[-1].text
    assert not needs_csv(result(*found[:BUTTONED]))


def test_csv_has_every_discrepancy_and_no_formulas() -> None:
    found = [stale("11260", "50.00", "40.00"), missing_in_qbo("-1+2", "30.00")]
    causes = {"11260": Cause.STALE_COPY}
    rows = list(csv.reader(io.StringIO(discrepancies_csv(found, causes=causes))))
    assert rows[0][:3] == ["number", "customer", "kind"] and rows[0][-1] == "cause"
    assert rows[1][-1] == "stale_copy" and rows[2][-1] == ""  # only the re-checked have one
    assert rows[1][:7] == [
        "11260",
        "Best Tackle",
        Kind.STALE_BALANCE.value,
        "50.00",
        "40.00",
        "10.00",
        "10.00",
    ]
    assert rows[2][0] == "'-1+2" and rows[2][1].startswith("'=")
    assert rows[2][3] == "" and rows[2][6] == "30.00"
