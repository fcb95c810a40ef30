"""Text from the portal or QuickBooks (an integration's name, a run's error, a record's
number, a payment's reference) reaches Slack escaped: ``<!channel>`` shows as written and
pings nobody."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from commands.followup_blocks import accounted_question
from commands.guard_blocks import refused_note
from commands.resync_blocks import (
    full_resync_prompt,
    history_message,
    outcome_message,
    processed_records_message,
)
from services.causes import RiskKind
from services.followups import FollowUp
from services.jobs import Job, JobKind, JobState, Outcome
from services.models import ProcessedRecord, RecordType, SyncRun, SyncStatus
from tests.diagnosis_support import NOW

PING = "<!channel>"


def shown(message: object) -> str:
    return json.dumps(message.as_kwargs())  # type: ignore[attr-defined]


def run(error: str | None = None) -> SyncRun:
    return SyncRun(
        id=f"run {PING}",
        integration_id="int-1",
        status=SyncStatus.FAILED,
        sync_from=date(2026, 11, 26),
        created_at=NOW,
        error=error,
    )


def test_portal_names_and_errors_are_escaped() -> None:
    messages = [
        full_resync_prompt(default_since=date(2026, 11, 26), integration_name=f"{PING} Books"),
        history_message([], integration_name=f"{PING} Books"),
        history_message([run(error=f"{PING} broke")], integration_name="Books"),
        processed_records_message(
            run(),
            [
                ProcessedRecord(
                    record_type=RecordType.INVOICE,
                    number=f"9{PING}",
                    action="updated",
                    balance_before=Decimal("1.00"),
                    balance_after=Decimal("2.00"),
                )
            ],
            invoice=None,
        ),
        refused_note(f"It would take out of view payment {PING} ($5.00)."),
    ]
    for message in messages:
        assert PING not in shown(message) and "&lt;!channel&gt;" in shown(message)


def test_a_refusal_naming_a_vendor_reference_is_escaped() -> None:
    job = Job(
        id="j1",
        kind=JobKind.RECORD,
        record_type=RecordType.INVOICE,
        target="11265",
        invoice="11265",
        requested_by="U1",
        channel="C1",
        thread_ts="1.1",
        state=JobState.FAILED,
        created_at=NOW,
        updated_at=NOW,
    )
    message = outcome_message(
        job,
        Outcome.REFUSED,
        comparison=None,
        error=f"It would take out of view payment {PING} ($10.00).",
        escalate_since=None,
    )
    assert PING not in shown(message)


def test_the_accounted_question_escapes_the_reference() -> None:
    followup = FollowUp(
        id=1,
        invoice="11269",
        kind=RiskKind.UNEXPLAINED,
        reference=PING,
        amount=Decimal("9.00"),
        what="unexplained",
        acknowledged_by="U1",
        opened_at=NOW,
    )
    assert PING not in shown(accounted_question(followup))
