"""How ``QboClient`` decodes its listing pages (~1.4 MB of JSON per 1000 invoices, ~30 ms of
CPU): in the bot's process, a slice at a time (``InProcessDecoder``), or in a worker process
(``WorkerDecoder``) so the event loop stays free for the other side's answers meanwhile.
Both give the same body (``qbo_listing.decode_page``); the worker's pairs come back pickled
and are re-shared here (``Listing.adopt``) so equal names, currencies and times stay one
object each across the whole listing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import sys
from typing import Any, NamedTuple, Protocol

from services.adapters import qbo_listing
from services.adapters.json_slices import loads_in_slices
from services.adapters.qbo_listing import (
    ANSWER,
    DECODE,
    INVOICES,
    REQUEST,
    SYSTEM,
    USAGE,
    Listing,
    log_skipped,
)
from services.errors import UpstreamError

log = logging.getLogger("services.adapters.qbo")


class ListingDecoder(Protocol):
    """How ``QboClient`` turns a listing page's raw answer into its body."""

    async def decode(self, content: bytes, encoding: str, listing: Listing) -> Any:
        """The body, its invoices read by ``listing``; ValueError when it is not JSON,
        UpstreamError for a malformed invoice."""
        ...

    async def prepare(self, invoices: int) -> None:
        """A listing of about this many invoices begins (a worker may start meanwhile)."""
        ...

    async def usage(self) -> Usage | None:
        """What the worker process used so far, None without a worker."""
        ...

    async def aclose(self) -> None: ...


class InProcessDecoder:
    """In the event loop's process, a slice at a time (``loads_in_slices``)."""

    async def decode(self, content: bytes, encoding: str, listing: Listing) -> Any:
        return await loads_in_slices(
            content.decode(encoding, "replace"), each=(INVOICES, listing.row)
        )

    async def prepare(self, invoices: int) -> None:
        return None

    async def usage(self) -> Usage | None:
        return None

    async def aclose(self) -> None:
        return None


class WorkerBroken(Exception):
    """The worker process could not start, died, hung or answered nonsense."""


class Usage(NamedTuple):
    peak_memory_kb: int
    """The worker's peak RSS (KiB): VmHWM where there is one (Linux), else ru_maxrss."""
    cpu_seconds: float


INVOICE_BYTES = 1400
"""About how long an invoice is in a query answer."""
IN_PROCESS_BELOW = 256 * 1024
"""Answers shorter than this (~180 invoices, a few ms to decode) are decoded in the bot's
process: not worth a round trip, nor a worker for a company with few open invoices."""


class WorkerDecoder:
    """In one worker process, started on first use and stopped by ``aclose``; one page at
    a time. Short answers (``in_process_below`` bytes) are decoded in this process. When the
    worker breaks (it cannot start, dies, or takes longer than ``timeout`` for a page), the
    page and every later one are decoded in this process instead, with a warning."""

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        in_process_below: int = IN_PROCESS_BELOW,
        command: list[str] | None = None,
    ) -> None:
        self._timeout = timeout
        self._in_process_below = in_process_below
        self._command = command or [sys.executable, "-m", qbo_listing.__name__]
        self._process: asyncio.subprocess.Process | None = None
        self._lock: asyncio.Lock | None = None
        self._fallback = InProcessDecoder()
        self.broken = False

    async def decode(self, content: bytes, encoding: str, listing: Listing) -> Any:
        if not self.broken and len(content) >= self._in_process_below:
            try:
                answer = await self._ask(DECODE, encoding.encode(), content)
            except WorkerBroken as exc:
                _warn(exc)
            else:
                kind = answer[0]
                if kind == "ok":
                    _, body, skipped = answer
                    for invoice_id in skipped:
                        log_skipped(invoice_id)
                    rows = _rows(body)
                    if rows is not None:
                        body["QueryResponse"]["Invoice"] = listing.adopt(rows)
                    return body
                if kind == "not json":
                    raise ValueError(answer[1])
                if kind == "malformed":
                    raise UpstreamError(answer[1], system=SYSTEM)
                # anything else the worker could not handle: decoded here, as it always was
        return await self._fallback.decode(content, encoding, listing)

    async def prepare(self, invoices: int) -> None:
        """Starts the worker now if the pages will be long enough to go to it: its start
        (~50 ms) then overlaps the first page's request."""
        if invoices * INVOICE_BYTES < self._in_process_below or self.broken:
            return
        async with self._locked():
            try:
                await self._started()
            except WorkerBroken as exc:
                _warn(exc)

    @property
    def pid(self) -> int | None:
        """The worker process's id while it runs."""
        return None if self._process is None else self._process.pid

    async def usage(self) -> Usage | None:
        if self._process is None or self.broken:
            return None
        try:
            answer = await self._ask(USAGE, b"", b"")
        except WorkerBroken:
            return None
        return Usage(peak_memory_kb=int(answer[1]), cpu_seconds=float(answer[2]))

    async def aclose(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # the worker ends at the end of its input
        try:
            await asyncio.wait_for(process.wait(), 2.0)
        except TimeoutError:
            _kill(process)
            await process.wait()

    async def _ask(self, operation: int, name: bytes, content: bytes) -> tuple[Any, ...]:
        async with self._locked():
            process = await self._started()
            assert process.stdin is not None and process.stdout is not None
            try:
                async with asyncio.timeout(self._timeout):
                    process.stdin.write(REQUEST.pack(operation, len(name), len(content)) + name)
                    process.stdin.write(content)
                    await process.stdin.drain()
                    (size,) = ANSWER.unpack(await process.stdout.readexactly(ANSWER.size))
                    answer = pickle.loads(await process.stdout.readexactly(size))
            except Exception as exc:  # a pipe error, a timeout, a frame that will not unpickle
                self._discard(process, broken=True)
                raise WorkerBroken(f"{type(exc).__name__}: {exc}") from exc
            except BaseException:  # cancelled mid-exchange: the next answer is not ours
                self._discard(process, broken=False)
                raise
            if not isinstance(answer, tuple) or not answer:
                self._discard(process, broken=True)
                raise WorkerBroken(f"unexpected answer {type(answer).__name__}")
            return answer

    def _locked(self) -> asyncio.Lock:
        if self._lock is None:  # created in the event loop that uses it
            self._lock = asyncio.Lock()
        return self._lock

    async def _started(self) -> asyncio.subprocess.Process:
        if self._process is None or self._process.returncode is not None:
            try:
                self._process = await asyncio.create_subprocess_exec(
                    *self._command,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            except OSError as exc:
                self.broken = True
                raise WorkerBroken(f"cannot start it: {exc}") from exc
        return self._process

    def _discard(self, process: asyncio.subprocess.Process, *, broken: bool) -> None:
        self.broken = self.broken or broken
        if self._process is process:
            self._process = None
        _kill(process)
        if process.stdin is not None:
            process.stdin.close()


def _warn(exc: WorkerBroken) -> None:
    log.warning(
        "QuickBooks Online listing pages: the decoding process failed (%s); "
        "decoding them in the bot's process from now on",
        exc,
    )


def _rows(body: Any) -> list[Any] | None:
    response = body.get("QueryResponse") if isinstance(body, dict) else None
    rows = response.get("Invoice") if isinstance(response, dict) else None
    return rows if isinstance(rows, list) else None


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):  # it just ended
            process.kill()
