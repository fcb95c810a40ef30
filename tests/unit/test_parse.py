from datetime import date

import pytest

from commands.parse import (
    Check,
    Digest,
    FullResync,
    Help,
    History,
    ResyncInvoice,
    ResyncRecord,
    parse,
)
from services.errors import UsageError
from services.models import RecordType


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("check 11260", Check("11260")),
        ("  CHECK   11260 ", Check("11260")),
        ("check #11260", Check("11260")),
        ("check INV-0042", Check("INV-0042")),
        ("help", Help()),
        ("history", History()),
        ("digest", Digest()),
        ("resync", FullResync()),
        ("resync --since 2026-11-25", FullResync(since=date(2026, 11, 25))),
        ("resync 11260", ResyncInvoice("11260")),
        ("resync company 58", ResyncRecord(RecordType.COMPANY, "58")),
        ("resync contact c-9", ResyncRecord(RecordType.CONTACT, "c-9")),
    ],
)
def test_valid_commands(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "check",
        "check abc",
        "check 11260 11261",
        "check " + "1" * 22,
        "check 1126'0",
        "frobnicate",
        "help me",
        "resync --since",
        "resync --since yesterday",
        "resync --since 2026-13-01",
        "resync company",
        "resync company a b",
        "resync 11260 11261",
        "x" * 5000,
        "check " + "9" * 5000,
    ],
)
def test_malformed_commands_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse(text)


def test_usage_error_never_echoes_a_long_argument() -> None:
    with pytest.raises(UsageError) as info:
        parse("frob" + "z" * 150)
    assert len(info.value.message) < 80


@pytest.mark.parametrize(
    "text", ["check -1", "check 11260.", "resync .11260", "resync company -3", "resync contact 58."]
)
def test_what_the_portal_contract_would_refuse_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [("digest now", "`digest` takes nothing"), ("history 5", "`history` takes nothing")],
)
def test_subcommands_say_what_they_take(text: str, says: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse(text)
    assert says in refused.value.message
