"""Text formatting for people: money, times, durations. Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

_SYMBOLS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "GBP": "£", "EUR": "€", "NZD": "NZ$"}


def escape(text: str) -> str:
    """Text from another system, safe in mrkdwn: Slack's three escapes, so a value such as
    ``<!channel>`` or ``<https://x|y>`` shows as written instead of pinging or linking."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fmt_money(amount: Decimal, currency: str | None = "USD") -> str:
    """`$1,234.50`, `-$10.00`, `1,234.50 CHF`."""
    code = (currency or "USD").upper()
    sign = "-" if amount < 0 else ""
    digits = f"{abs(amount):,.2f}"
    symbol = _SYMBOLS.get(code)
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {code}"


def fmt_when(moment: datetime | None, *, now: datetime) -> str:
    """`Nov 30, 2026 01:50 (1 hour ago)`, in the reader's zone; `never` for None."""
    if moment is None:
        return "never"
    return f"{fmt_moment(moment)} ({fmt_ago(now - moment)})"


def fmt_moment(moment: datetime) -> str:
    """A date and time in the reader's zone: `Nov 30, 2026 01:50` (`today 01:50`)."""
    utc = moment.astimezone(UTC)
    return slack_date(moment, "{date_short_pretty} {time}", f"{utc:%b %d, %Y %H:%M} UTC")


def fmt_day(moment: datetime) -> str:
    """The day of a moment in the reader's zone: `Nov 30, 2026`."""
    return slack_date(moment, "{date_short}", f"{moment.astimezone(UTC):%b %d, %Y}")


def slack_date(moment: datetime, tokens: str, fallback: str) -> str:
    """``moment`` in each reader's own time zone: Slack's date formatting
    (``<!date^EPOCH^TOKENS|FALLBACK>``, tokens such as ``{date_short_pretty}`` and ``{time}``);
    ``fallback`` (in UTC) shows where a client cannot render it."""
    return f"<!date^{int(moment.timestamp())}^{tokens}|{escape(fallback)}>"


_UTC_TEXT = re.compile(r"\b(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}) UTC\b")


def localize(text: str) -> str:
    """Moments the services layer writes as `2026-11-30 14:05 UTC`, in the reader's own time
    zone (the UTC text is the fallback). For text already escaped for mrkdwn."""

    def one(match: re.Match[str]) -> str:
        y, mo, d, h, mi = (int(g) for g in match.groups())
        moment = datetime(y, mo, d, h, mi, tzinfo=UTC)
        return slack_date(moment, "{date_short_pretty} {time}", match.group(0))

    return _UTC_TEXT.sub(one, text)


def fmt_clock(moment: datetime) -> str:
    """A time of day with seconds, in the reader's zone: `10:42:05`."""
    return slack_date(moment, "{time_secs}", f"{moment.astimezone(UTC):%H:%M:%S} UTC")


def fmt_ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "in the future"
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"  # pragma: no cover


def fmt_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def csv_cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    if value[:1] in ("=", "+", "-", "@"):
        value = "'" + value
    if any(c in value for c in ',"\n'):
        value = '"' + value.replace('"', '""') + '"'
    return value
