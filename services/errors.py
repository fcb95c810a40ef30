"""Typed errors. The bot's one error handler turns each into the right Slack reply."""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the bot knows how to explain to a person."""

    user_message = "Something went wrong."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.user_message)
        self.message = message or self.user_message


class UsageError(BotError):
    """Malformed command input. Answered privately with the usage text."""

    user_message = "I did not understand that."


class NotAllowedError(BotError):
    user_message = "You are not allowed to do that."


class UpstreamError(BotError):
    """An external system answered with an error or not at all."""

    user_message = "An external system did not answer as expected."

    def __init__(
        self,
        message: str,
        *,
        system: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.system = system
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [f"{self.system}: {self.message}"]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class ThrottledError(UpstreamError):
    """429 or a throttling fault (QBO 3001). ``retry_after`` in seconds when known."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class TransientError(UpstreamError):
    """5xx, timeouts, dropped connections: worth a bounded retry. ``retry_after`` in seconds
    when the answer asked for a wait (a 503 with ``Retry-After``)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class AuthenticationError(UpstreamError):
    """401 / fault 3200: the access token was refused."""


class ReconnectRequired(UpstreamError):
    """The refresh token was revoked or expired (invalid_grant): a person must reconnect."""

    user_message = "The QuickBooks Online connection needs to be reconnected by an admin."


class NotFoundError(UpstreamError):
    """The object does not exist (QBO fault 610, HTTP 404)."""


class ValidationFault(UpstreamError):
    """The request was refused as invalid (QBO ValidationFault, HTTP 400/422)."""


class StaleObjectError(ValidationFault):
    """QBO fault 5010: the object changed since it was read (its ``SyncToken`` moved on)."""


class ClosedPeriodError(ValidationFault):
    """QBO refused a write dated in a closed accounting period (the company's closing date)."""


def in_words(exc: UpstreamError) -> str:
    """What happened with another system, for a person: which system, what it did, and
    "try again" only when trying again can help. The vendor's own text stays in the log."""
    if isinstance(exc, ThrottledError):
        return f"{exc.system} is busy (it asked us to slow down). Try again in a minute."
    if isinstance(exc, TransientError):
        what = "timed out" if "timed out" in exc.message else "did not answer"
        return f"{exc.system} {what}. Try again in a minute."
    if isinstance(exc, ReconnectRequired):
        return f"{exc.system} must be reconnected by an admin (trying again will not help)."
    if isinstance(exc, NotFoundError):
        return f"{exc.system} has no such record. Nothing was changed."
    if isinstance(exc, StaleObjectError):
        return (
            f"{exc.system} says someone changed the record since it was read, so nothing was "
            "changed. Check the invoice again and prepare a new fix."
        )
    if isinstance(exc, ClosedPeriodError):
        return (
            f"{exc.system} refused: the transaction is dated in a closed accounting period. "
            "Nothing was changed; someone with access to the closing date must decide."
        )
    status = f" (HTTP {exc.status})" if exc.status else ""
    return (
        f"{exc.system} refused the request{status}. Trying again will not help; nothing was "
        "changed. The bot's log has the details."
    )
