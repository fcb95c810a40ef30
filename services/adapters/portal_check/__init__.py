"""The Portal API conformance check (``invoicebot portal-check``): a live portal held to
``docs/portal-api.yaml``, one named check at a time.

Read-only by default: schemas, paging to the end, error shapes and their precedence, the
refusal of a wrong API key, reads answered the same twice. With ``write_invoice``, the
write paths on that one invoice: a record resync (lifecycle, ``Idempotency-Key`` replay,
409 while it runs) and a full sync of its integration (replay, 409 for a second one).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from services.adapters.portal_check.contract import Contract, repository_contract
from services.adapters.portal_check.probe import CheckFailed, CheckResult, Outcome, Probe
from services.adapters.portal_check.reads import ReadChecks
from services.adapters.portal_check.runner import Runner
from services.adapters.portal_check.writes import WriteChecks

__all__ = ["CheckResult", "Contract", "Outcome", "check_portal", "repository_contract"]


async def check_portal(
    *,
    base_url: str,
    api_key: str,
    write_invoice: str | None = None,
    report: Callable[[CheckResult], None] = lambda result: None,
    transport: httpx.AsyncBaseTransport | None = None,
    contract: Contract | None = None,
    page_size: int = 100,
    timeout: float = 30.0,
    poll_seconds: float = 1.0,
    finish_timeout: float = 600.0,
) -> list[CheckResult]:
    """Every check's result, in order (each also passed to ``report`` as it comes)."""
    probe = Probe(base_url, api_key, contract or repository_contract(), transport, timeout)
    async with probe:
        runner = Runner(probe, report)
        reachable = await runner.check(
            "portal.reachable",
            f"an answer from {probe.root}",
            lambda: _reach(probe),
        )
        if not reachable:
            return runner.results
        found = await ReadChecks(runner, page_size=page_size).run()
        if write_invoice is not None:
            writes = WriteChecks(
                runner,
                found,
                write_invoice,
                poll_seconds=poll_seconds,
                finish_timeout=finish_timeout,
            )
            await writes.run_all()

        async def headers() -> str | None:
            if probe.header_problems:
                raise CheckFailed("; ".join(probe.header_problems[:3]))
            return f"{probe.requests} answers"

        await runner.check(
            "answers.headers",
            "every answer JSON with an X-Request-Id, every error with the error body",
            headers,
        )
    return runner.results


async def _reach(probe: Probe) -> str | None:
    answer = await probe.call("GET", "/integrations")
    if answer.status in (401, 403):
        raise CheckFailed(f"the API key was refused ({answer.status}): {answer.brief()}")
    return f"HTTP {answer.status}"
