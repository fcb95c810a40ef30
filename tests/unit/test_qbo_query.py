"""The fake QuickBooks Online's query parser and state, without HTTP."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.qbo.app import FaultKind, QboState
from sandbox.qbo.query import QueryError, parse_query
from sandbox.qbo.state import INTUIT_TZ
from tests.qbo_support import NOW, contract_state


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("SELCT*FROMInvoceWHRAD=<>'()\\, 0123%.")), max_size=60)
)
def test_the_parser_only_ever_raises_query_error(text: str) -> None:
    with contextlib.suppress(QueryError):
        parse_query(text, tz=INTUIT_TZ)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_quoted_value_round_trips(value: str) -> None:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    parsed = parse_query(f"SELECT * FROM Invoice WHERE DocNumber = '{escaped}'", tz=INTUIT_TZ)
    assert parsed.where[0].values == (value,)


def test_random_faults_repeat_with_the_same_seed() -> None:
    def sequence(seed: int) -> list[FaultKind | None]:
        state = QboState(seed=seed)
        state.knobs.fault_rate = 0.5
        return [state.next_fault() for _ in range(40)]

    assert sequence(7) == sequence(7)
    assert any(sequence(7)) and None in sequence(7)
    assert sequence(7) != sequence(8)


def test_seeded_world_matches_the_scenarios() -> None:
    state = contract_state()
    assert [inv.doc_number for inv in state.invoices.all_by_id()] == [
        "11260",
        "11261",
        "11262",
        "11263",
        "11264",
        "D-1",
    ]
    assert state.invoice("11264").balance == 0
    big = QboState.seeded(NOW, matching=5000)
    query_ = parse_query("SELECT * FROM Invoice WHERE Balance > '0' ORDERBY Id", tz=INTUIT_TZ)
    assert len(big.invoices.select(query_)) == sum(
        1 for inv in big.invoices.all_by_id() if inv.balance > 0
    )


def test_parsed_structure() -> None:
    parsed = parse_query(
        "select COUNT(*) from INVOICE where docnumber in ('a', 'b\\'c') and "
        "metadata.lastupdatedtime >= '2026-11-28T09:00:00Z' order by Balance desc, Id "
        "maxresults 50 startposition 11",
        tz=INTUIT_TZ,
    )
    assert parsed.count and parsed.entity == "Invoice"
    assert parsed.where[0].field == "DocNumber" and parsed.where[0].values == ("a", "b'c")
    assert parsed.where[1].field == "MetaData.LastUpdatedTime" and parsed.where[1].op == ">="
    assert parsed.order_by == (("Balance", True), ("Id", False))
    assert (parsed.start_position, parsed.max_results) == (11, 50)
    assert parse_query("SELECT * FROM Invoice", tz=INTUIT_TZ).max_results == 100
