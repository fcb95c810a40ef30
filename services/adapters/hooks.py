"""What the adapters report about each request they make (the bot turns it into metrics).

The adapters never import a metrics library: they call an observer, if they were given one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from services.errors import (
    AuthenticationError,
    NotFoundError,
    ReconnectRequired,
    ThrottledError,
    TransientError,
    UpstreamError,
    ValidationFault,
)

EventHooks = Mapping[str, list[Callable[..., Any]]]
"""httpx's ``event_hooks`` for an adapter's client ("request", "response"): the bot times
each request with them, leaving the transport (and the proxies from the environment,
HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY) to httpx."""


class RequestObserver(Protocol):
    def request(self, system: str, outcome: str) -> None:
        """One HTTP attempt to ``system`` ended with ``outcome`` (see :func:`outcome_of`)."""
        ...

    def retry(self, system: str, reason: str) -> None:
        """A failed attempt is about to be retried; ``reason`` is its outcome."""
        ...

    def secret(self, value: str) -> None:
        """A credential the adapter just obtained (a rotated token): keep it out of logs.
        Called before the value is stored or used."""
        ...


class NoObserver:
    def request(self, system: str, outcome: str) -> None:
        pass

    def retry(self, system: str, reason: str) -> None:
        pass

    def secret(self, value: str) -> None:
        pass


OK = "ok"


def outcome_of(error: UpstreamError | None) -> str:
    """A short, bounded label for an attempt's result (metric label values stay few)."""
    match error:
        case None:
            return OK
        case ThrottledError():
            return "throttled"
        case TransientError():
            return "transient"
        case ReconnectRequired():
            return "reconnect_required"
        case AuthenticationError():
            return "unauthorized"
        case NotFoundError():
            return "not_found"
        case ValidationFault():
            return "refused"
        case _:
            return "error"
