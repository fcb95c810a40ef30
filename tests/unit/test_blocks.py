import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from commands.actions import ActionId, ButtonState
from commands.blocks import check_message, usage_message
from commands.resync_blocks import (
    LISTED_RECORDS,
    outcome_message,
    processed_records_message,
    records_csv,
    replace_actions,
)
from services.errors import UsageError
from services.jobs import Job, JobKind, JobState, Outcome
from services.models import (
    AccountingInvoice,
    PortalInvoice,
    ProcessedRecord,
    RecordType,
    SyncRun,
    SyncStatus,
)
from services.reconcile import compare

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def comparison(qbo: str | None, portal: str | None):  # type: ignore[no-untyped-def]
    acct = (
        AccountingInvoice(
            id="130",
            number="11260",
            customer_name="Best Tackle",
            total=Decimal("50.00"),
            balance=Decimal(qbo),
            currency="USD",
            last_updated=NOW - timedelta(hours=1),
        )
        if qbo
        else None
    )
    mirror = (
        PortalInvoice(
            number="11260",
            customer_name="Best Tackle",
            total=Decimal("50.00"),
            balance=Decimal(portal),
            status="open",
            integration_id="int-1",
            last_synced_at=NOW - timedelta(days=4),
        )
        if portal
        else None
    )
    return compare("11260", acct, mirror, checked_at=NOW)


def rendered(message) -> str:  # type: ignore[no-untyped-def]
    return json.dumps(message.as_kwargs(), ensure_ascii=False)


def test_check_message_out_of_sync_shows_both_balances_and_two_buttons() -> None:
    message = check_message(
        comparison("50.00", "40.00"), now=NOW, full_resync_since=date(2026, 11, 29)
    )
    body = message.as_kwargs()
    text = json.dumps(body, ensure_ascii=False)
    assert "Invoice 11260 · Best Tackle" in text
    assert "$50.00" in text and "$40.00" in text
    assert "Out of sync by $10.00" in text
    actions = [b for b in body["blocks"] if b["type"] == "actions"]
    assert len(actions) == 1
    ids = [e["action_id"] for e in actions[0]["elements"]]
    assert ids == [ActionId.RESYNC_INVOICE, ActionId.RESYNC_FULL]
    full = actions[0]["elements"][1]
    assert "confirm" in full
    assert ButtonState.load(full["value"]) == ButtonState(invoice="11260", since=date(2026, 11, 29))


def test_check_message_in_sync_has_no_buttons() -> None:
    body = check_message(
        comparison("50.00", "50.00"), now=NOW, full_resync_since=date(2026, 11, 29)
    )
    assert "In sync" in rendered(body)
    assert not [b for b in body.as_kwargs()["blocks"] if b["type"] == "actions"]


def test_missing_in_accounting_offers_no_resync() -> None:
    body = check_message(comparison(None, "40.00"), now=NOW, full_resync_since=date(2026, 11, 29))
    assert "Missing in QuickBooks Online" in rendered(body)
    assert not [b for b in body.as_kwargs()["blocks"] if b["type"] == "actions"]


def test_usage_message_is_short_and_lists_commands() -> None:
    text = rendered(usage_message("I don't know `frob`."))
    assert "/invoice check NUMBER" in text and "frob" in text


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "not json",
        "{}" * 2000,
        '{"v":2}',
        '{"v":1,"invoice":"x\'; drop"}',
        '{"v":1,"x":1}',
    ],
)
def test_forged_button_values_are_refused(raw: str | None) -> None:
    with pytest.raises(UsageError):
        ButtonState.load(raw)


def run() -> SyncRun:
    return SyncRun(
        id="run-1",
        integration_id="int-1",
        status=SyncStatus.COMPLETED,
        sync_from=date(2026, 11, 26),
        created_at=NOW,
    )


def records(count: int) -> list[ProcessedRecord]:
    out = [
        ProcessedRecord(
            record_type=RecordType.INVOICE,
            number="11262",
            action="updated",
            balance_before=Decimal("60.00"),
            balance_after=Decimal("75.00"),
        )
    ]
    out += [
        ProcessedRecord(record_type=RecordType.INVOICE, number=str(20000 + i), action="unchanged")
        for i in range(count - 1)
    ]
    return out


def test_processed_records_are_counted_grouped_and_the_invoice_called_out() -> None:
    message = processed_records_message(run(), records(60), invoice="11262")
    text = rendered(message)
    assert "invoices: 59 unchanged, 1 updated" in text
    assert "Invoice 11262 was processed" in text and "$60.00 → $75.00" in text
    assert "and 59 more" in text
    assert len(message.blocks) <= 50
    missing = rendered(processed_records_message(run(), records(3), invoice="11999"))
    assert "11999 was *not* among" in missing


def test_records_csv_is_complete_and_neutralises_formulas() -> None:
    rows = records(LISTED_RECORDS + 5)
    rows.append(ProcessedRecord(record_type=RecordType.COMPANY, number="=cmd", action="updated"))
    csv = records_csv(rows).splitlines()
    assert len(csv) == len(rows) + 1
    assert csv[1] == "invoice,11262,updated,60.00,75.00"
    assert csv[-1].startswith("company,'=cmd")


def job(kind: JobKind = JobKind.RECORD) -> Job:
    return Job(
        id="j1",
        kind=kind,
        record_type=RecordType.INVOICE,
        target="11261",
        invoice="11261",
        requested_by="U1",
        channel="C1",
        thread_ts="1.1",
        root_ts="1.1",
        state=JobState.FAILED,
        created_at=NOW,
        updated_at=NOW,
    )


def test_failed_record_resync_offers_the_escalation() -> None:
    message = outcome_message(
        job(),
        Outcome.RESYNC_FAILED,
        comparison=None,
        error="Object Not Found",
        escalate_since=date(2026, 11, 28),
    )
    body = message.as_kwargs()
    assert "Object Not Found" in json.dumps(body)
    buttons = [e for b in body["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == [ActionId.RESYNC_FULL]
    state = ButtonState.load(buttons[0]["value"])
    assert state.invoice == "11261" and state.root == "1.1" and state.since == date(2026, 11, 28)


def test_replace_actions_removes_every_button() -> None:
    blocks = check_message(
        comparison("50.00", "40.00"), now=NOW, full_resync_since=date(2026, 11, 29)
    )
    replaced = replace_actions(blocks.as_kwargs()["blocks"], "started by <@U1>")
    assert not [b for b in replaced if b["type"] == "actions"]
    assert replaced[-1]["elements"][0]["text"] == "started by <@U1>"
