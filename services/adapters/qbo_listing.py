"""A QuickBooks listing page (``SELECT * FROM Invoice WHERE Balance > '0' ...``) decoded into
the compact (number, listed) pairs the digest keeps, and the worker process that can do it
away from the bot's event loop (``python -m services.adapters.qbo_listing``, driven by
``qbo_decoders.WorkerDecoder``). This module imports little (no asyncio, no httpx), so that
process starts fast.

A decoded page is what ``parse_json`` gives, with the invoices of ``QueryResponse.Invoice``
replaced by (number, listed) pairs (None for a row without a DocNumber, which is skipped);
an answer that is not JSON raises ValueError, a malformed invoice UpstreamError.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import resource
import signal
import struct
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, BinaryIO

from services.errors import UpstreamError

if TYPE_CHECKING:
    from services.ports import Listed

if TYPE_CHECKING:
    from services.ports import Listed

log = logging.getLogger("services.adapters.qbo")

SYSTEM = "QuickBooks Online"
"""``qbo_faults.SYSTEM`` (not imported from there: it would bring httpx into the worker)."""
INVOICES = ("QueryResponse", "Invoice")
"""Where a query answer holds its invoices."""
CENT = Decimal("0.01")
SHARED_TIMES = 10_000
"""Distinct last-change times kept for sharing (then the table starts again)."""
Pair = tuple[str, "Listed"]


# -- Intuit values ----------------------------------------------------------------------
def amount(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValueError(f"not an amount: {type(value).__name__}")
    exact = Decimal(value)
    cents = exact.quantize(CENT)
    return cents if cents == exact else exact


def opt_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def utc_datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def missing(field: str) -> datetime:
    raise ValueError(f"invoice without {field}")


# -- one invoice of a listing -------------------------------------------------------------
class Listing:
    """Reads each open invoice's number, balance, last update, customer name and currency
    straight from its document, as it is decoded: the document is dropped at once. Equal
    names, currencies and times become one shared object, so the entries a digest holds
    stay small. One per listing (its tables live as long as the listing)."""

    def __init__(self, *, skipped: list[object] | None = None) -> None:
        self._strings: dict[str | None, str | None] = {None: None}
        self._times: dict[str, datetime] = {}
        self._moments: dict[datetime, datetime] = {}
        self.skipped = skipped
        """Where the Ids of rows without a DocNumber go (None: logged at once)."""

    def row(self, raw: Any) -> Pair | None:
        """(number, listed), or None for a row without a DocNumber (skipped)."""
        if not isinstance(raw, dict) or not raw.get("DocNumber"):
            invoice_id = raw.get("Id") if isinstance(raw, dict) else None
            if self.skipped is None:
                log_skipped(invoice_id)
            else:
                self.skipped.append(invoice_id)
            return None
        times = self._times
        try:
            stamp = (raw.get("MetaData") or {}).get("LastUpdatedTime")
            if not isinstance(stamp, str):
                raise ValueError("invoice without LastUpdatedTime")
            changed = times.get(stamp)
            if changed is None:
                changed = utc_datetime(stamp) or missing("LastUpdatedTime")
                if len(times) >= SHARED_TIMES:
                    times.clear()
                times[stamp] = changed
            name = str((raw.get("CustomerRef") or {}).get("name") or "")
            currency = opt_str((raw.get("CurrencyRef") or {}).get("value"))
            balance = amount(raw.get("Balance", 0))
            number = str(raw["DocNumber"])
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            raise UpstreamError(
                f"malformed invoice Id={raw.get('Id')!s:.30}: {type(exc).__name__}",
                system=SYSTEM,
            ) from exc
        share = self._strings.setdefault
        return number, (balance, changed, share(name, name) or "", share(currency, currency))

    def adopt(self, rows: list[Pair | None]) -> list[Pair | None]:
        """Pairs decoded elsewhere (a worker's, unpickled: shared within their page only)
        with their names, currencies and times shared with the rest of the listing."""
        share, moments = self._strings.setdefault, self._moments
        adopted: list[Pair | None] = []
        for pair in rows:
            if pair is None:
                adopted.append(None)
                continue
            number, (balance, changed, name, currency) = pair
            if changed is not None:
                known = moments.get(changed)
                if known is None:
                    if len(moments) >= SHARED_TIMES:
                        moments.clear()
                    moments[changed] = changed
                else:
                    changed = known
            adopted.append(
                (number, (balance, changed, share(name, name) or "", share(currency, currency)))
            )
        return adopted


def log_skipped(invoice_id: object) -> None:
    log.info("QuickBooks Online invoice without a DocNumber skipped (Id=%s)", invoice_id)


def decode_page(content: bytes, encoding: str, listing: Listing) -> Any:
    """The whole answer at once (in a worker: nothing else waits for this process)."""
    body = json.loads(content.decode(encoding, "replace"), parse_float=Decimal)
    response = body.get("QueryResponse") if isinstance(body, dict) else None
    rows = response.get("Invoice") if isinstance(response, dict) else None
    if isinstance(rows, list):
        assert isinstance(response, dict)
        read = listing.row
        response["Invoice"] = [read(raw) for raw in rows]
    return body


# -- the worker process ---------------------------------------------------------------------
NICE = 10
"""The worker's niceness: it yields the CPU to the bot's event loop (which asks for the
portal's pages one after the other) whenever both want it."""


DECODE, USAGE = 1, 2
REQUEST = struct.Struct(">BHI")
"""(operation, length of the encoding's name, length of the content), then both."""
ANSWER = struct.Struct(">I")
"""The length of the pickled answer that follows."""


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer each request in turn until the input ends (the bot closed it, or is gone)."""
    while True:
        head = _read(requests, REQUEST.size)
        if head is None:
            return
        operation, name_size, size = REQUEST.unpack(head)
        name, content = _read(requests, name_size), _read(requests, size)
        if name is None or content is None:
            return
        answer: tuple[Any, ...]
        if operation == DECODE:
            answer = _decoded(content, name.decode())
        elif operation == USAGE:
            own = resource.getrusage(resource.RUSAGE_SELF)
            answer = ("usage", _peak_kb(own.ru_maxrss), own.ru_utime + own.ru_stime)
        else:
            answer = ("unknown operation", operation)
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        answers.write(ANSWER.pack(len(data)) + data)
        answers.flush()


def _decoded(content: bytes, encoding: str) -> tuple[Any, ...]:
    skipped: list[object] = []
    try:
        body = decode_page(content, encoding, Listing(skipped=skipped))
    except UpstreamError as exc:
        return ("malformed", exc.message)
    except ValueError as exc:
        return ("not json", str(exc))
    except Exception as exc:  # e.g. RecursionError: decoded in the bot instead, as before
        return ("failed", f"{type(exc).__name__}: {exc}")
    return ("ok", body, skipped)


def _peak_kb(maxrss: int) -> int:
    """This process's own peak RSS. On Linux, ru_maxrss also counts the RSS the process had
    before its exec: for a child started by vfork, that is the whole bot's."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return maxrss


def _read(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size) if size else b""
    return data if len(data) == size else None


def main() -> None:
    os.nice(NICE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C is the bot's to handle: it closes us
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print cannot break a frame
    with answers:
        serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
