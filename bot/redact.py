"""Secrets never reach a log line: every log record is scrubbed when it is created.

Known secrets (the configured tokens, keys and signing secret) are replaced wherever they
appear, and so are values that look like credentials (``Bearer ...``, ``xoxb-...``,
``refresh_token=...``): the QuickBooks tokens rotate, so their values are not known ahead.
Installed as a log record factory, so it covers every logger and every handler (pytest's
caplog included), with the message and any traceback formatted once, then scrubbed.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from typing import Any

from pydantic import SecretStr

from bot.settings import Settings

MASK = "[redacted]"
MIN_SECRET = 6
"""Shorter configured values are not treated as secrets (they would mangle ordinary words)."""
LEARNT = 64
"""Rotated tokens remembered (the newest ones; older ones are dead anyway)."""
QUIET_LOGGERS = {"aiosqlite": logging.INFO}
"""Loggers that print SQL parameters (tokens among them) at DEBUG: never below this."""

PATTERNS = [
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    re.compile(r"()\bx(?:ox[abpers]|app)-[A-Za-z0-9-]{4,}"),
    re.compile(
        r"(?i)((?:refresh_token|access_token|client_secret|api_key|x-api-key|signing_secret)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,;}]+"
    ),
]


class Redactor:
    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._learnt: deque[str] = deque(maxlen=LEARNT)
        self._lock = threading.Lock()
        self._known: list[str] = []
        """Every secret, longest first (so a secret inside another is not half-masked)."""

    def _refresh(self) -> None:
        self._known = sorted({*self._secrets, *self._learnt}, key=len, reverse=True)

    def add(self, *values: SecretStr | str | None) -> None:
        with self._lock:
            for value in values:
                raw = value.get_secret_value() if isinstance(value, SecretStr) else value
                if raw and len(raw.strip()) >= MIN_SECRET:
                    self._secrets.add(raw.strip())
            self._refresh()

    def learn(self, value: str) -> None:
        """A token obtained at run time (QuickBooks tokens rotate)."""
        value = value.strip()
        if len(value) >= MIN_SECRET and value not in self._learnt:
            with self._lock:
                self._learnt.append(value)
                self._refresh()

    def redact(self, text: str) -> str:
        for secret in self._known:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text

    def scrub(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redact(text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)


REDACTOR = Redactor()
_installed = False
_install_lock = threading.Lock()


def install_redaction(settings: Settings | None = None) -> Redactor:
    """Scrub every log record from now on; add ``settings``' secrets to the known ones."""
    global _installed
    if settings is not None:
        REDACTOR.add(
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.slack_app_token,
            settings.qbo_client_secret,
            settings.qbo_refresh_token,
            settings.portal_api_key,
        )
    for name, level in QUIET_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level < level:  # NOTSET included: the root's DEBUG would reach it
            logger.setLevel(level)
    with _install_lock:
        if not _installed:
            previous = logging.getLogRecordFactory()

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                REDACTOR.scrub(record)
                return record

            logging.setLogRecordFactory(factory)
            _installed = True
    return REDACTOR
