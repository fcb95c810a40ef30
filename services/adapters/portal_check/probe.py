"""The checker's HTTP side and its verdicts: raw answers from the portal, checked one rule
at a time, each rule a named check with what it expected."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from services.adapters.portal_check.contract import Contract

API_PREFIX = "/api/v1"


class Outcome(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, what the contract expects, and what was found."""

    name: str
    outcome: Outcome
    expected: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAIL

    def line(self) -> str:
        text = f"{self.outcome.value} {self.name}: expected {self.expected}"
        if self.detail:
            text += f" ({self.detail})" if self.outcome is Outcome.PASS else f"; {self.detail}"
        return text


class CheckFailed(Exception):
    """A check found the portal breaking the contract; the message says how."""


@dataclass
class Answer:
    """One portal answer: status, headers, and the body decoded as JSON (None when not)."""

    method: str
    path: str
    status: int
    headers: httpx.Headers
    body: Any
    text: str

    @property
    def request(self) -> str:
        return f"{self.method} {self.path}"

    def expect_status(self, *statuses: int) -> None:
        if self.status not in statuses:
            wanted = " or ".join(str(s) for s in statuses)
            raise CheckFailed(
                f"{self.request} answered {self.status}, not {wanted}: {self.brief()}"
            )

    def brief(self) -> str:
        text = " ".join(self.text.split())
        return text if len(text) <= 200 else text[:197] + "..."


@dataclass
class Probe:
    """Requests to the portal (raw: nothing is retried or repaired) and the contract to hold
    their answers to. Every answer is also held to the contract's rules for all answers."""

    base_url: str
    api_key: str
    contract: Contract
    transport: httpx.AsyncBaseTransport | None = None
    timeout: float = 30.0
    header_problems: list[str] = field(default_factory=list)
    requests: int = 0
    _http: httpx.AsyncClient | None = None

    @property
    def root(self) -> str:
        root = self.base_url.rstrip("/")
        return root if root.endswith(API_PREFIX) else root + API_PREFIX

    async def __aenter__(self) -> Probe:
        self._http = httpx.AsyncClient(
            base_url=self.root,
            transport=self.transport,
            timeout=self.timeout,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        key: str | None = None,
        send_key: bool = True,
        idempotency_key: str | None = None,
        content_type: str | None = None,
    ) -> Answer:
        """``key``: another API key to send than the right one; ``send_key``: False for none."""
        assert self._http is not None, "use the probe as an async context manager"
        headers: dict[str, str] = {}
        if send_key:
            headers["X-API-Key"] = self.api_key if key is None else key
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        content: bytes | None = None
        if body is not None:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type or "application/json"
        self.requests += 1
        shown = path + ("?" + str(httpx.QueryParams(params)) if params else "")
        try:
            response = await self._http.request(
                method, path, params=params, content=content, headers=headers
            )
        except httpx.HTTPError as exc:
            raise CheckFailed(f"{method} {shown} failed: {type(exc).__name__}: {exc}") from None
        try:
            decoded: Any = response.json()
        except ValueError:
            decoded = None
        answer = Answer(
            method, shown, response.status_code, response.headers, decoded, response.text
        )
        self._hold_to_rules(answer)
        return answer

    def _hold_to_rules(self, answer: Answer) -> None:
        """What every answer owes: JSON, an ``X-Request-Id``, and the error body on errors."""
        problems = []
        media = answer.headers.get("content-type", "").split(";")[0].strip()
        if media != "application/json":
            problems.append(f"Content-Type {media or 'missing'}")
        if not answer.headers.get("x-request-id"):
            problems.append("no X-Request-Id")
        if answer.status >= 400 and self.contract.problems("ErrorBody", answer.body):
            problems.append("an error without the error body")
        if problems and len(self.header_problems) < 5:
            self.header_problems.append(
                f"{answer.request} ({answer.status}): {', '.join(problems)}"
            )

    def conform(self, answer: Answer, schema: str) -> Any:
        """The answer's body, which must match ``schema``."""
        if answer.body is None:
            raise CheckFailed(f"{answer.request} answered no JSON: {answer.brief()}")
        problems = self.contract.problems(schema, answer.body)
        if problems:
            raise CheckFailed(f"{answer.request} breaks {schema}: " + "; ".join(problems))
        return answer.body

    def error(self, answer: Answer, status: int, *codes: str) -> dict[str, Any]:
        """The answer must be error ``status`` with one of ``codes`` in the error body."""
        answer.expect_status(status)
        body = self.conform(answer, "ErrorBody")
        error: dict[str, Any] = body["error"]
        if codes and error["code"] not in codes:
            raise CheckFailed(
                f"{answer.request} answered {status} with code {error['code']!r}, "
                f"not {' or '.join(repr(c) for c in codes)}"
            )
        return error
