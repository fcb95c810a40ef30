"""The fake portal's own tiny QuickBooks Online client, speaking QBO's wire format over HTTP.

The sandbox may not import from ``services/``, so the portal carries this small client:
OAuth2 refresh (rotating refresh tokens, the newest kept), the query endpoint paged with
STARTPOSITION/MAXRESULTS, read by Id, and both casings of ``Fault`` turned into ``QboError``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from functools import partial
from types import TracebackType
from typing import Any

import httpx

from sandbox.portal import retries as portal_retries
from sandbox.portal.state import PortalState
from sandbox.qbo.wire import dumps

MINOR_VERSION = "75"
PAGE_SIZE = 1000


class QboError(Exception):
    """QuickBooks Online refused or failed a request; ``str()`` is what the portal reports."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
    ) -> None:
        text = f"QuickBooks Online: {message}"
        if code:
            text += f" (code {code})"
        super().__init__(text)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


def quote(value: str) -> str:
    """A query-language string literal: single quotes, ``'`` and ``\\`` escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fault(body: Any) -> tuple[str, str | None, str | None] | None:
    """(message, code, detail) of a data-service ``Fault`` or a gateway ``fault``, if the body
    is one."""
    if not isinstance(body, dict):
        return None
    fault = body.get("Fault", body.get("fault"))
    if not isinstance(fault, dict):
        return None
    errors = fault.get("Error", fault.get("error")) or [{}]
    first = errors[0] if isinstance(errors, list) and errors else {}
    if not isinstance(first, dict):
        first = {}
    message = first.get("Message", first.get("message")) or str(fault.get("type", "Fault"))
    code = first.get("code")
    detail = first.get("Detail", first.get("detail"))
    return (
        str(message),
        (str(code) if code is not None else None),
        (str(detail) if detail is not None else None),
    )


class QboClient:
    """``async with QboClient(state) as qbo:``; one client per sync run or record resync."""

    def __init__(self, state: PortalState) -> None:
        self._state = state
        self._conn = state.qbo
        self._http = httpx.AsyncClient(
            transport=state.qbo_transport, timeout=state.qbo_timeout, follow_redirects=False
        )

    async def __aenter__(self) -> QboClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def query_pages(self, statement: str) -> AsyncIterator[list[dict[str, Any]]]:
        """Every Invoice the ``SELECT * FROM Invoice ...`` statement matches, page by page."""
        start = 1
        while True:
            paged = f"{statement} STARTPOSITION {start} MAXRESULTS {PAGE_SIZE}"
            body = await self._get("query", params={"query": paged})
            response = body.get("QueryResponse")
            if not isinstance(response, dict):
                raise QboError("the query answer has no QueryResponse")
            page = response.get("Invoice", [])
            if not isinstance(page, list):
                raise QboError("the query answer's Invoice is not a list")
            yield page
            if len(page) < PAGE_SIZE:
                return
            start += PAGE_SIZE

    async def find_by_number(self, number: str) -> dict[str, Any] | None:
        statement = f"SELECT * FROM Invoice WHERE DocNumber = {quote(number)}"
        async for page in self.query_pages(statement):
            if page:
                return page[0]
        return None

    async def get_invoice(self, invoice_id: str) -> dict[str, Any]:
        """The invoice with this Id; a missing one is QBO's 610 Object Not Found fault."""
        body = await self._get(f"invoice/{invoice_id}", params={})
        invoice = body.get("Invoice")
        if not isinstance(invoice, dict):
            raise QboError("the answer has no Invoice")
        return invoice

    async def post_payment(self, payment: dict[str, Any]) -> dict[str, Any]:
        """Create a Payment (an Intuit document); QBO's refusal is raised as QboError."""
        body = await self._send("POST", "payment", params={}, content=dumps(payment).encode())
        created = body.get("Payment")
        if not isinstance(created, dict):
            raise QboError("the answer has no Payment")
        return created

    async def _get(self, path: str, *, params: dict[str, str]) -> dict[str, Any]:
        return await self._send("GET", path, params=params)

    async def _send(
        self, method: str, path: str, *, params: dict[str, str], content: bytes | None = None
    ) -> dict[str, Any]:
        """One API call, tried again as ``portal_retries`` says (a POST only when QBO
        cannot have acted on it); the last failure raised as QboError."""
        attempt = partial(self._attempt, method, path, params, content)
        try:
            return await portal_retries.call(attempt, write=method != "GET")
        except portal_retries.Retryable as exc:
            fault = exc.__cause__  # QBO's own words for a 429 or 5xx, with its status
            raise fault if isinstance(fault, QboError) else QboError(exc.message) from None

    async def _attempt(
        self, method: str, path: str, params: dict[str, str], content: bytes | None
    ) -> dict[str, Any]:
        """One attempt; an access token QBO refuses (401) is refreshed and sent once more."""
        url = f"{self._conn.base_url}/v3/company/{self._conn.realm_id}/{path}"
        params = {**params, "minorversion": MINOR_VERSION}
        response = await self._request(method, url, params, content, force=False)
        if response.status_code == 401:
            response = await self._request(method, url, params, content, force=True)
        failed = portal_retries.failed_answer(response, f"HTTP {response.status_code}")
        if failed is not None:
            raise failed from _fault_of(response)
        return _decode(response)

    async def _request(
        self, method: str, url: str, params: dict[str, str], content: bytes | None, *, force: bool
    ) -> httpx.Response:
        token = await self._access_token(force=force)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            return await self._http.request(
                method, url, params=params, headers=headers, content=content
            )
        except httpx.TransportError as exc:
            raise portal_retries.failed_transport(exc) from None

    async def _access_token(self, *, force: bool) -> str:
        conn = self._conn
        loop = asyncio.get_running_loop()
        async with self._state.qbo_lock:
            fresh = conn.access_token and conn.access_token_expires_at > loop.time() + 60
            if fresh and not force and conn.access_token:
                return conn.access_token
            try:
                response = await self._http.post(
                    conn.token_url,
                    data={"grant_type": "refresh_token", "refresh_token": conn.refresh_token},
                    auth=(conn.client_id, conn.client_secret),
                    headers={"Accept": "application/json"},
                )
            except httpx.HTTPError as exc:
                raise QboError(f"token refresh failed ({type(exc).__name__})") from exc
            try:
                body = response.json()
            except ValueError:
                body = {}
            if response.status_code != 200 or not isinstance(body, dict):
                error = body.get("error", "") if isinstance(body, dict) else ""
                raise QboError(f"token refresh refused ({error or response.status_code})")
            conn.access_token = str(body["access_token"])
            conn.access_token_expires_at = loop.time() + float(body.get("expires_in", 3600))
            # Keep the newest refresh token before anything else uses the new access token.
            conn.refresh_token = str(body.get("refresh_token", conn.refresh_token))
            return conn.access_token


def _fault_of(response: httpx.Response) -> QboError:
    """The error a failed answer is, in QBO's words (its fault) when it has them."""
    try:
        _decode(response)
    except QboError as exc:
        return exc
    return QboError(f"unexpected answer (HTTP {response.status_code})", status=response.status_code)


def _decode(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.text, parse_float=Decimal)
    except ValueError:
        body = None
    fault = _fault(body)
    if fault is not None:
        message, code, detail = fault
        raise QboError(message, status=response.status_code, code=code, detail=detail)
    if response.status_code != 200 or not isinstance(body, dict):
        raise QboError(
            f"unexpected answer (HTTP {response.status_code})", status=response.status_code
        )
    return body
