"""One place that turns errors into what the person sees. Private, short, no secrets."""

from __future__ import annotations

import logging
import secrets

from commands.blocks import Message, error_message, usage_message
from services.errors import (
    BotError,
    NotAllowedError,
    ReconnectRequired,
    ThrottledError,
    TransientError,
    UpstreamError,
    UsageError,
)

log = logging.getLogger("bot.errors")


def new_reference() -> str:
    return "ERR-" + secrets.token_hex(4).upper()


def reply_for(exc: BaseException) -> Message:
    """The private reply for ``exc``; unexpected errors are logged under a reference id."""
    if isinstance(exc, UsageError):
        return usage_message(exc.message)
    if isinstance(exc, NotAllowedError):
        return error_message(exc.message)
    if isinstance(exc, ReconnectRequired):
        log.error("accounting connection needs reconnecting: %s", exc)
        return error_message(ReconnectRequired.user_message)
    if isinstance(exc, UpstreamError):
        reference = new_reference()
        log.warning("upstream error [%s]: %s", reference, exc)
        what = "is busy" if isinstance(exc, ThrottledError) else "did not answer"
        if not isinstance(exc, ThrottledError | TransientError):
            what = "refused the request"
        return error_message(f"{exc.system} {what}. Try again in a minute.", reference=reference)
    if isinstance(exc, BotError):
        return error_message(exc.message)
    reference = new_reference()
    log.error("unexpected error [%s]", reference, exc_info=exc)
    return error_message("Something went wrong on my side.", reference=reference)
