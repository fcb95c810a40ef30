"""Text formatting for people: money, times, durations. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
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
    """`Nov 30, 2026 01:50 UTC (1 hour ago)`; `never` for None."""
    if moment is None:
        return "never"
    return f"{moment:%b %d, %Y %H:%M} UTC ({fmt_ago(now - moment)})"


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
