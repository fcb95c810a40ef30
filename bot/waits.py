"""Waiting is visible: while a person's request waits on a throttled system for longer than
``WAIT_NOTICE_SECONDS``, they are told privately, where the answer comes (the channel, or a
resync job's thread), when the bot asks again (in their own time zone)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from bot.bootstrap import Container
from bot.context import Caller
from commands.blocks import Message, wait_message
from services.waits import Wait, waits_told_to

MAX_NOTICES = 3
"""Notices for one request at most (Slack takes 5 replies through one response_url)."""


@contextmanager
def telling_waits(deps: Container, caller: Caller) -> Iterator[None]:
    """Work started in this block (a task copies the context it is created in, and so do
    the long jobs it starts) tells ``caller`` of its throttled waits longer than the
    setting."""

    async def send(message: Message) -> None:
        await caller.tell(**message.as_kwargs())

    with _told_by(deps, send):
        yield


@contextmanager
def waits_in_thread(deps: Container, *, channel: str, user: str, thread_ts: str) -> Iterator[None]:
    """A resync job's waits, told privately to the person who asked, in the job's thread
    where its progress and outcome come."""

    async def send(message: Message) -> None:
        await deps.slack.chat_postEphemeral(
            channel=channel, user=user, thread_ts=thread_ts, **message.as_kwargs()
        )

    with _told_by(deps, send):
        yield


@contextmanager
def _told_by(deps: Container, send: Callable[[Message], Awaitable[None]]) -> Iterator[None]:
    told = 0

    async def tell(wait: Wait) -> None:
        nonlocal told
        if wait.seconds <= deps.settings.wait_notice_seconds or told >= MAX_NOTICES:
            return
        told += 1
        until = deps.clock() + timedelta(seconds=wait.seconds)
        await send(wait_message(wait.system, until))

    with waits_told_to(tell):
        yield
