"""Running named checks: each one passes, fails saying what it found, or is skipped because
what it needs is missing. Results are reported as they come."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from services.adapters.portal_check.probe import CheckFailed, CheckResult, Outcome, Probe


class Skipped(Exception):
    """A check that cannot run (what it needs is missing); the message says why."""


@dataclass
class Runner:
    probe: Probe
    report: Callable[[CheckResult], None] = lambda result: None
    results: list[CheckResult] = field(default_factory=list)

    async def check(
        self, name: str, expected: str, run: Callable[[], Awaitable[str | None]]
    ) -> bool:
        """Run one check; True when it passed."""
        try:
            detail = await run()
        except CheckFailed as exc:
            self._record(CheckResult(name, Outcome.FAIL, expected, str(exc)))
            return False
        except Skipped as exc:
            self._record(CheckResult(name, Outcome.SKIP, expected, str(exc)))
            return False
        self._record(CheckResult(name, Outcome.PASS, expected, detail or ""))
        return True

    def _record(self, result: CheckResult) -> None:
        self.results.append(result)
        self.report(result)


def ensure(condition: bool, problem: str) -> None:
    if not condition:
        raise CheckFailed(problem)


def money(value: Any, where: str) -> Decimal:
    """A Money string as a Decimal (the schema checks its form; this reads it)."""
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise CheckFailed(f"{where}: {value!r} is not an amount") from None


def moment(value: Any, where: str) -> datetime:
    """A Timestamp as an aware UTC datetime."""
    if not isinstance(value, str) or not value.endswith("Z"):
        raise CheckFailed(f"{where}: {value!r} is not a UTC time ending in Z")
    try:
        return datetime.fromisoformat(value[:-1] + "+00:00").astimezone(UTC)
    except ValueError:
        raise CheckFailed(f"{where}: {value!r} is not an RFC 3339 time") from None
