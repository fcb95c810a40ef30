"""One place that turns errors into what the person sees. Private, short, no secrets."""

from __future__ import annotations

import logging
import secrets

from bot.metrics import Metrics
from commands.blocks import Message, error_message, usage_message
from services.errors import (
    BotError,
    NotAllowedError,
    ReconnectRequired,
    UpstreamError,
    UsageError,
    in_words,
)

log = logging.getLogger("bot.errors")

RECONNECT = (
    "QuickBooks Online is disconnected (the connection was revoked or has expired). "
    "An admin must reconnect the app to the company and set the new QBO_REFRESH_TOKEN; "
    "until then I cannot read QuickBooks."
)


def new_reference() -> str:
    return "ERR-" + secrets.token_hex(4).upper()


def reply_for(exc: BaseException, metrics: Metrics) -> Message:
    """The private reply for ``exc`` (counted in ``metrics``); unexpected errors are logged
    under a reference id."""
    metrics.errors.labels(_kind(exc)).inc()
    if isinstance(exc, UsageError):
        return usage_message(exc.message)
    if isinstance(exc, NotAllowedError):
        return error_message(exc.message)
    if isinstance(exc, ReconnectRequired):
        # Logged once, as an error, where the refusal was learnt (the QBO adapter).
        log.info("told a person that QuickBooks Online must be reconnected")
        return error_message(RECONNECT)
    if isinstance(exc, UpstreamError):
        reference = new_reference()
        log.warning("upstream error [%s]: %s", reference, exc)  # the vendor's text stays here
        return error_message(in_words(exc), reference=reference)
    if isinstance(exc, BotError):
        return error_message(exc.message)
    reference = log_unexpected(exc)
    return error_message("Something went wrong on my side.", reference=reference)


def log_unexpected(exc: BaseException, what: str = "unexpected error") -> str:
    """Log ``exc`` with its traceback under a new reference id, and return the id."""
    reference = new_reference()
    log.error("%s [%s]", what, reference, exc_info=exc)
    return reference


def _kind(exc: BaseException) -> str:
    for kind, cls in (
        ("usage", UsageError),
        ("not_allowed", NotAllowedError),
        ("reconnect_required", ReconnectRequired),
        ("upstream", UpstreamError),
        ("known", BotError),
    ):
        if isinstance(exc, cls):
            return kind
    return "unexpected"
