"""Waits a person should see: when QuickBooks Online or the portal asks us to slow down (a
429), the retry policy waits before it asks again, and whoever is waiting for the answer may
want to be told. The services layer does not know who that is: the flow that starts the work
sets a listener for its task (a context variable, inherited by the tasks it starts), and the
retry policy tells it of every throttled wait. Work with no listener waits silently."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wait:
    system: str
    """The system that asked for the wait ("QuickBooks Online", "portal")."""
    seconds: float
    """How long until the request is sent again."""


WaitListener = Callable[[Wait], Awaitable[None]]

_listener: ContextVar[WaitListener | None] = ContextVar("wait_listener", default=None)


@contextmanager
def waits_told_to(listener: WaitListener) -> Iterator[None]:
    """Within this block (and in tasks started from it), throttled waits go to ``listener``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


async def tell_wait(wait: Wait) -> None:
    """Tell the current listener, if any; a listener that fails is logged, never raised: the
    retry goes ahead either way."""
    listener = _listener.get()
    if listener is None:
        return
    try:
        await listener(wait)
    except Exception:
        log.warning(
            "could not tell of a %.1fs wait for %s", wait.seconds, wait.system, exc_info=True
        )
