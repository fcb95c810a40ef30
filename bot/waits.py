"""Waiting is visible: while a person's request waits on a throttled system for longer than
``WAIT_NOTICE_SECONDS``, they are told privately, in the channel where the answer comes, when
the bot asks again (in their own time zone)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from bot.bootstrap import Container
from bot.context import Caller
from commands.blocks import wait_message
from services.waits import Wait, waits_told_to

MAX_NOTICES = 3
"""Notices for one request at most (Slack takes 5 replies through one response_url)."""


@contextmanager
def telling_waits(deps: Container, caller: Caller) -> Iterator[None]:
    """Work started in this block (a task copies the context it is created in, and so do
    the long jobs it starts) tells ``caller`` of its throttled waits longer than the
    setting."""
    told = 0

    async def tell(wait: Wait) -> None:
        nonlocal told
        if wait.seconds <= deps.settings.wait_notice_seconds or told >= MAX_NOTICES:
            return
        told += 1
        until = deps.clock() + timedelta(seconds=wait.seconds)
        await caller.tell(**wait_message(wait.system, until).as_kwargs())

    with waits_told_to(tell):
        yield
