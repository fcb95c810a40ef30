"""What the Slack emulator remembers: workspace, messages and their edits, files, API calls.

Everything that changes a message goes through ``SlackState`` so that the change feed
(``changes``), the button numbers and the "last activity" clock stay consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.slack.blocks import Block, interactive_elements

ElementKey = tuple[str, str, str]
"""(message ts, action_id, option value): what identifies a button for the whole session."""


@dataclass(frozen=True)
class Team:
    id: str = "T0SANDBOX1"
    domain: str = "sandbox"
    name: str = "Sandbox MSP"


@dataclass(frozen=True)
class User:
    id: str
    name: str
    real_name: str
    is_bot: bool = False
    tz: str = "UTC"
    """The user's time zone (IANA name), as users.info tells it."""


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    is_private: bool = False


@dataclass(frozen=True)
class Usergroup:
    id: str
    handle: str
    name: str
    users: tuple[str, ...]


@dataclass(frozen=True)
class Bot:
    user_id: str = "U0BOT00001"
    bot_id: str = "B0BOT00001"
    app_id: str = "A0INVOICE1"
    name: str = "invoicebot"


FINANCE = Channel("C0FINANCE1", "finance")
GENERAL = Channel("C0GENERAL1", "general")
ALICE = User("U0ALICE001", "alice", "Alice Finance", tz="America/New_York")
BOB = User("U0BOB00001", "bob", "Bob Support", tz="Europe/London")
SLACKBOT = User("USLACKBOT", "slackbot", "Slackbot", is_bot=True)
FINANCE_ADMINS = Usergroup("S0FINADMIN", "finance-admins", "Finance admins", (ALICE.id,))


@dataclass
class Version:
    text: str
    blocks: list[Block]
    attachments: list[dict[str, Any]]
    at: float
    """Epoch seconds of the post or edit."""


@dataclass
class UploadedFile:
    id: str
    name: str
    length: int
    """The length announced in files.getUploadURLExternal."""
    title: str = ""
    content: bytes | None = None
    """None until the bytes are POSTed to the upload URL."""
    channel: str | None = None
    thread_ts: str | None = None
    created: float = 0.0

    @property
    def size(self) -> int:
        return len(self.content or b"")


@dataclass
class Message:
    number: int
    """Session-wide message number the console shows ("msg 3")."""
    channel: str
    ts: str
    user: str
    """Author's user id (the bot user, or Slackbot for Slack's own notices)."""
    versions: list[Version]
    thread_ts: str | None = None
    """The root's ts for a thread reply; None for a top-level message."""
    ephemeral_to: str | None = None
    """The only user who sees this message, for ephemerals."""
    reply_broadcast: bool = False
    files: list[UploadedFile] = field(default_factory=list)
    bot_id: str | None = None
    deleted: bool = False
    metadata: dict[str, Any] | None = None
    """Slack message metadata (``event_type``, ``event_payload``), set by chat.postMessage
    or chat.update; shown by conversations.history/replies with ``include_all_metadata``."""

    @property
    def text(self) -> str:
        return self.versions[-1].text

    @property
    def blocks(self) -> list[Block]:
        return self.versions[-1].blocks

    @property
    def edited(self) -> bool:
        return len(self.versions) > 1

    def payload(self, team_id: str, *, with_metadata: bool = False) -> dict[str, Any]:
        """The message as Slack's API shows it (chat.postMessage's ``message``, block_actions);
        ``with_metadata``: its metadata too (conversations.* with ``include_all_metadata``)."""
        out: dict[str, Any] = {
            "type": "message",
            "user": self.user,
            "text": self.text,
            "ts": self.ts,
        }
        out["team"] = team_id
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.blocks:
            out["blocks"] = self.blocks
        if self.versions[-1].attachments:
            out["attachments"] = self.versions[-1].attachments
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.edited:
            out["edited"] = {"user": self.user, "ts": f"{self.versions[-1].at:.6f}"}
        if self.files:
            out["files"] = [{"id": f.id, "name": f.name, "title": f.title} for f in self.files]
        if with_metadata and self.metadata is not None:
            out["metadata"] = self.metadata
        return out


@dataclass(frozen=True)
class Change:
    seq: int
    kind: Literal["posted", "edited", "deleted"]
    message: Message
    version: int
    """Index into ``message.versions`` of the version this change shows."""


@dataclass(frozen=True)
class ApiCall:
    method: str
    """A Web API method, or "response_url" / "upload" for those endpoints."""
    params: dict[str, Any]
    error: str | None
    at: float

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ResponseUrl:
    token: str
    kind: Literal["command", "action"]
    channel: str
    user: str
    created: float
    source_ts: str | None = None
    """For an action: the message the button was in (the "original")."""
    last_ts: str | None = None
    """The last message posted through this URL (a command's "original")."""
    uses: int = 0


class SlackState:
    """One Slack workspace as the emulator keeps it. Not thread-safe: use it from one loop."""

    def __init__(
        self,
        *,
        team: Team | None = None,
        bot: Bot | None = None,
        channels: Iterable[Channel] = (FINANCE, GENERAL),
        users: Iterable[User] = (ALICE, BOB),
        usergroups: Iterable[Usergroup] = (FINANCE_ADMINS,),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.team = team or Team()
        self.bot = bot or Bot()
        self.clock = clock
        self.channels: dict[str, Channel] = {c.id: c for c in channels}
        bot_user = User(self.bot.user_id, self.bot.name, self.bot.name, is_bot=True)
        self.users: dict[str, User] = {u.id: u for u in (*users, bot_user, SLACKBOT)}
        self.usergroups: dict[str, Usergroup] = {g.id: g for g in usergroups}
        self.messages: dict[str, Message] = {}
        """Every message and ephemeral by ts, in the order they were posted."""
        self.changes: list[Change] = []
        self.calls: list[ApiCall] = []
        self.files: dict[str, UploadedFile] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.selections: dict[tuple[str, str, str], dict[str, Any]] = {}
        """(ts, block_id, action_id) → the state value of a date picker or select."""
        self.element_numbers: dict[ElementKey, int] = {}
        self.elements_by_number: dict[int, ElementKey] = {}
        self.in_flight = 0
        """API requests being handled right now."""
        self.last_activity = time.monotonic()
        self._last_ts = 0
        self._changed = asyncio.Event()

    # -- look-ups -------------------------------------------------------------------------

    def channel(self, id_or_name: str) -> Channel | None:
        if id_or_name in self.channels:
            return self.channels[id_or_name]
        name = id_or_name.lstrip("#")
        return next((c for c in self.channels.values() if c.name == name), None)

    def user(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    def history(self, channel: str) -> list[Message]:
        """Top-level messages of a channel (and replies sent to it too), oldest first."""
        return [
            m
            for m in self.messages.values()
            if m.channel == channel
            and not m.deleted
            and m.ephemeral_to is None
            and (m.thread_ts is None or m.reply_broadcast)
        ]

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        """The replies in a thread (not the root), oldest first."""
        return [
            m
            for m in self.messages.values()
            if m.channel == channel
            and m.thread_ts == thread_ts
            and not m.deleted
            and m.ephemeral_to is None
        ]

    def ephemerals(self, user: str | None = None) -> list[Message]:
        return [
            m
            for m in self.messages.values()
            if m.ephemeral_to is not None and (user is None or m.ephemeral_to == user)
        ]

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def element_key(self, number: int) -> ElementKey | None:
        return self.elements_by_number.get(number)

    # -- changes --------------------------------------------------------------------------

    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[Block] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        user: str | None = None,
        thread_ts: str | None = None,
        ephemeral_to: str | None = None,
        reply_broadcast: bool = False,
        files: list[UploadedFile] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        author = user or self.bot.user_id
        message = Message(
            number=len(self.messages) + 1,
            channel=channel,
            ts=self.next_ts(),
            user=author,
            versions=[Version(text, blocks or [], attachments or [], self.clock())],
            thread_ts=thread_ts,
            ephemeral_to=ephemeral_to,
            reply_broadcast=reply_broadcast,
            files=files or [],
            bot_id=self.bot.bot_id if author == self.bot.user_id else None,
            metadata=metadata,
        )
        self.messages[message.ts] = message
        self._record(message, "posted")
        return message

    def edit(
        self,
        message: Message,
        *,
        text: str,
        blocks: list[Block],
        attachments: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if metadata is not None:
            message.metadata = metadata
        message.versions.append(Version(text, blocks, attachments or [], self.clock()))
        self._record(message, "edited")

    def delete(self, message: Message) -> None:
        message.deleted = True
        self._record(message, "deleted")

    def record_call(self, method: str, params: dict[str, Any], error: str | None) -> None:
        self.calls.append(ApiCall(method, params, error, self.clock()))
        self.touch()

    def touch(self) -> None:
        """Note activity now (wait_for_quiet waits for a quiet period after the last one)."""
        self.last_activity = time.monotonic()
        self._changed.set()
        self._changed = asyncio.Event()

    def next_ts(self) -> str:
        """A Slack ts ("1732950000.000100") strictly greater than every ts handed out."""
        micros = max(int(self.clock() * 1_000_000), self._last_ts + 1)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _record(self, message: Message, kind: Literal["posted", "edited", "deleted"]) -> None:
        version = len(message.versions) - 1
        if kind != "deleted":
            self._number_elements(message.ts, message.versions[version].blocks)
        self.changes.append(Change(len(self.changes) + 1, kind, message, version))
        self.touch()

    def _number_elements(self, ts: str, blocks: list[Block]) -> None:
        for element in interactive_elements(blocks):
            key = (ts, element.action_id, element.option)
            if key not in self.element_numbers:
                number = len(self.element_numbers) + 1
                self.element_numbers[key] = number
                self.elements_by_number[number] = key

    # -- waiting --------------------------------------------------------------------------

    async def wait_for_change(self, timeout: float | None = None) -> None:
        """Return at the next change or API call (or after ``timeout`` seconds)."""
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def wait_for_quiet(
        self,
        *,
        quiet: float = 0.5,
        timeout: float = 120.0,
        is_busy: Callable[[], bool] | None = None,
    ) -> bool:
        """Wait until ``is_busy()`` is False, no API request is being handled and nothing
        happened for ``quiet`` seconds. False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            idle = now - self.last_activity
            busy = self.in_flight > 0 or (is_busy is not None and is_busy())
            if not busy and idle >= quiet:
                return True
            if now >= deadline:
                return False
            step = 0.02 if busy else quiet - idle
            await asyncio.sleep(max(0.005, min(step, deadline - now, 0.1)))
