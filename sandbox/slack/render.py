"""Messages as plain text: Block Kit rendered the way a person reads it in a terminal.

Interactive elements show their session-wide number (``[3] Resync invoice``); thread
replies are indented under a ``↳`` line naming their root message.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.slack.blocks import Block, block_elements, interactive_elements, text_of
from sandbox.slack.state import Change, Message, SlackState, UploadedFile, Version
from sandbox.slack.text import emoji, styled

_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


_DATE = re.compile(r"!date\^(\d+)\^([^^|]*)(?:\^[^|]*)?")
_TOKEN = re.compile(r"\{(\w+)\}")


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def slack_date(epoch: int, tokens: str, zone: tzinfo, now: datetime | None = None) -> str:
    """Slack's ``<!date^EPOCH^TOKENS|...>`` as the reader sees it in ``zone`` (24-hour
    clock, as a reader who prefers it): ``{date_short_pretty} {time}`` is ``today 10:42``."""
    moment = datetime.fromtimestamp(epoch, UTC).astimezone(zone)
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    relative = {0: "today", -1: "yesterday", 1: "tomorrow"}.get((moment.date() - today).days)
    day = _ordinal(moment.day)
    plain = {
        "date_num": f"{moment:%Y-%m-%d}",
        "date": f"{moment:%B} {day}, {moment:%Y}",
        "date_short": f"{moment:%b} {moment.day}, {moment:%Y}",
        "date_long": f"{moment:%A, %B} {day}, {moment:%Y}",
        "time": f"{moment:%H:%M}",
        "time_secs": f"{moment:%H:%M:%S}",
    }
    plain["date_pretty"] = relative or plain["date"]
    plain["date_short_pretty"] = relative or plain["date_short"]
    plain["date_long_pretty"] = relative or plain["date_long"]
    seconds = int((now or datetime.now(UTC)).timestamp()) - epoch
    minutes = abs(seconds) // 60
    span = f"{minutes} minute{'s' if minutes != 1 else ''}" if minutes else "a few seconds"
    plain["ago"] = f"{span} ago" if seconds >= 0 else f"in {span}"
    return _TOKEN.sub(lambda m: plain.get(m.group(1), m.group(0)), tokens)


def zone_of(state: SlackState, user_id: str | None) -> tzinfo:
    """The reader's time zone (users.info ``tz``); UTC when unknown."""
    user = state.user(user_id) if user_id else None
    try:
        return ZoneInfo(user.tz) if user else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def mrkdwn(state: SlackState, text: str, *, ansi: bool = False, zone: tzinfo = UTC) -> str:
    """Slack's markup made readable: mentions, channel links and URLs (``label (url)``),
    dates in the reader's ``zone``, emphasis (ANSI styles with ``ansi``, else plain words),
    emoji as characters."""

    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            user = state.user(target[1:])
            return "@" + (label or (user.name if user else target[1:]))
        if target.startswith("#"):
            channel = state.channel(target[1:])
            return "#" + (label or (channel.name if channel else target[1:]))
        if target.startswith("!subteam^"):
            group = state.usergroups.get(target[9:])
            return label or ("@" + group.handle if group else "@group")
        date = _DATE.fullmatch(target)
        if date:
            now = datetime.fromtimestamp(state.clock(), UTC)
            return slack_date(int(date.group(1)), date.group(2), zone, now)
        if target.startswith("!date^"):
            return label or target
        if target.startswith("!"):
            return "@" + target[1:]
        if "://" not in target and not target.startswith(("mailto:", "tel:")):
            return match.group(0)  # not markup: Slack wants "&lt;" here, shown as typed
        return f"{label} ({target})" if label and label != target else target

    text = emoji(styled(_LINK.sub(link, text), ansi=ansi))
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class Renderer:
    """Renders messages of one state for one ``reader`` (dates in their time zone; a
    transcript shows its user's ephemerals and zone); with ``ansi``, emphasis as terminal
    styles."""

    def __init__(self, state: SlackState, *, ansi: bool = False, reader: str | None = None) -> None:
        self.state = state
        self.ansi = ansi
        self.reader = reader

    def text(self, text: str) -> str:
        return mrkdwn(self.state, text, ansi=self.ansi, zone=zone_of(self.state, self.reader))

    # -- messages -------------------------------------------------------------------------

    def change(self, change: Change) -> str:
        note = {"posted": "", "edited": " (edited)", "deleted": " (deleted)"}[change.kind]
        version = change.message.versions[change.version]
        return self.message(change.message, version, note=note, body=change.kind != "deleted")

    def message(
        self, message: Message, version: Version | None = None, *, note: str = "", body: bool = True
    ) -> str:
        version = version or message.versions[-1]
        author = self.state.user(message.user)
        title = f"{author.name if author else message.user}"
        channel = self.state.channels.get(message.channel)
        where = f"#{channel.name if channel else message.channel}"
        indent = "  "
        if message.thread_ts:
            root = self.state.messages.get(message.thread_ts)
            root_label = f"msg {root.number}" if root else message.thread_ts
            title = f"  ↳ {title} in thread of {root_label} · msg {message.number}{note}"
            if message.reply_broadcast:
                title += f" · also sent to {where}"
            indent = "      "
        else:
            title = f"{title} in {where} · msg {message.number}{note}"
        if message.ephemeral_to:
            title += " · only visible to you"
        lines = [title]
        if body:
            content = self.content(message, version)
            lines += [indent + line if line else "" for line in content]
        return "\n".join(lines).rstrip() + "\n"

    def content(self, message: Message, version: Version) -> list[str]:
        lines: list[str] = []
        if version.blocks:
            lines += self.blocks(message, version.blocks)
        elif version.text:
            lines += self.text(version.text).splitlines()
        for attachment in version.attachments:
            lines += self._attachment(message, attachment)
        lines += [self.file(upload) for upload in message.files]
        return lines or ["(empty message)"]

    def transcript(self, user: str) -> str:
        """Every top-level message ``user`` sees, each followed by its thread, dates in
        ``user``'s time zone."""
        if self.reader != user:
            return Renderer(self.state, ansi=self.ansi, reader=user).transcript(user)
        shown = [m for m in self.state.messages.values() if _visible(m, user)]
        parts: list[str] = []
        for root in (m for m in shown if m.thread_ts is None):
            parts.append(self.message(root, note=_edited(root)))
            parts += [self.message(m, note=_edited(m)) for m in shown if m.thread_ts == root.ts]
        return "\n".join(parts)

    def file_number(self, upload: UploadedFile) -> int:
        """Files are numbered in upload order, for the whole session (``[file 2]``)."""
        return list(self.state.files).index(upload.id) + 1 if upload.id in self.state.files else 0

    def file(self, upload: UploadedFile) -> str:
        content = upload.content or b""
        size = f"{len(content)} bytes"
        if upload.name.endswith(".csv"):
            rows = max(0, len(content.decode("utf-8", "replace").splitlines()) - 1)
            size = f"{rows} rows, {size}"
        title = f" · {upload.title}" if upload.title and upload.title != upload.name else ""
        return f"[file {self.file_number(upload)}] {upload.name}{title} ({size})"

    # -- blocks ---------------------------------------------------------------------------

    def blocks(self, message: Message, blocks: list[Block]) -> list[str]:
        lines: list[str] = []
        for block in blocks:
            lines += self.block(message, block)
        return lines

    def block(self, message: Message, block: Block) -> list[str]:
        kind = block.get("type")

        def text(obj: Any) -> str:
            return self.text(text_of(obj))

        if kind == "header":
            return [f"# {text(block.get('text'))}"]
        if kind == "divider":
            return ["-----"]
        if kind == "markdown":
            return self.text(str(block.get("text", ""))).splitlines()
        if kind == "section":
            lines = text(block.get("text")).splitlines()
            lines += _columns([text(f) for f in block.get("fields") or []])
            accessory = block.get("accessory")
            if isinstance(accessory, dict):
                lines.append(self.element(message, block, accessory))
            return lines
        if kind == "context":
            parts = [
                f"[{e.get('alt_text', 'image')}]" if e.get("type") == "image" else text(e)
                for e in block.get("elements") or []
            ]
            return [" · ".join(parts)]
        if kind == "actions":
            return ["  ".join(self.element(message, block, e) for e, _ in block_elements(block))]
        if kind == "input":
            element = block.get("element") or {}
            if element.get("type") == "plain_text_input":
                key = (message.ts, str(block.get("block_id")), str(element.get("action_id")))
                typed = self.state.selections.get(key, {}).get("value")
                shown = f'"{typed}"' if typed else "(type TEXT fills it)"
                return [f"{text(block.get('label'))}: {shown}"]
            return [f"{text(block.get('label'))}: {self.element(message, block, element)}"]
        if kind == "image":
            return [f"[image: {block.get('alt_text', '')}]"]
        if kind == "rich_text":
            return _rich_text(block).splitlines()
        return [f"[{kind} block]"]

    def element(self, message: Message, block: Block, element: dict[str, Any]) -> str:
        entries = interactive_elements([{**block, "type": "actions", "elements": [element]}])
        if not entries:
            return f"[{element.get('type')}]"
        numbered = [(self._number(message, e.action_id, e.option), e) for e in entries]
        kind = entries[0].kind
        if kind == "button":
            number, entry = numbered[0]
            extra = " (asks to confirm)" if entry.confirm else ""
            if element.get("url"):
                extra += f" (opens {element['url']})"
            return f"[{number}] {entry.label}{extra}"
        if kind == "datepicker":
            number, entry = numbered[0]
            key = (message.ts, entry.block_id, entry.action_id)
            chosen = self.state.selections.get(key, {}).get("selected_date")
            shown = f"selected {chosen}" if chosen else _initial(element)
            return f"[{number}] {entry.label} ({shown})"
        if len(entries) == 1 and kind not in ("overflow",) and not entries[0].selected:
            number, entry = numbered[0]
            return f"[{number}] {entry.label}"
        label = text_of(element.get("placeholder")) or ("More" if kind == "overflow" else "Pick")
        return f"{label}: " + "  ".join(f"[{n}] {e.label}" for n, e in numbered)

    def _number(self, message: Message, action_id: str, option: str) -> str:
        number = self.state.element_numbers.get((message.ts, action_id, option))
        return str(number) if number is not None else "?"

    def _attachment(self, message: Message, attachment: dict[str, Any]) -> list[str]:
        lines: list[str] = []
        for key in ("pretext", "title", "text"):
            if attachment.get(key):
                lines += self.text(str(attachment[key])).splitlines()
        fields = attachment.get("fields") or []
        lines += [f"{f.get('title', '')}: {f.get('value', '')}" for f in fields]
        if not lines and attachment.get("fallback"):
            lines.append(str(attachment["fallback"]))
        lines += self.blocks(message, attachment.get("blocks") or [])
        return ["| " + line for line in lines]


def _edited(message: Message) -> str:
    return " (edited)" if message.edited else ""


def _visible(message: Message, user: str) -> bool:
    return not message.deleted and message.ephemeral_to in (None, user)


def _initial(element: dict[str, Any]) -> str:
    initial = element.get("initial_date")
    return f"initial {initial}" if initial else "no date"


def _columns(fields: list[str]) -> list[str]:
    """Section fields two to a line, like Slack's two columns; each flattened to one line."""
    flat = [" ".join(f.split("\n")) for f in fields]
    if not flat:
        return []
    width = max(_visible_len(f) for f in flat[0::2])
    lines = []
    for i in range(0, len(flat), 2):
        pair = flat[i : i + 2]
        pad = " " * (width - _visible_len(pair[0]))
        lines.append(pair[0] + pad + "   " + pair[1] if len(pair) == 2 else pair[0])
    return [line.rstrip() for line in lines]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _visible_len(text: str) -> int:
    return len(_ANSI.sub("", text))


def _rich_text(node: Any) -> str:
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    children = [_rich_text(e) for e in node.get("elements") or []]
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "link":
        return str(node.get("text") or node.get("url", ""))
    if kind == "user":
        return "@" + str(node.get("user_id", ""))
    if kind == "emoji":
        return emoji(f":{node.get('name', '')}:")
    if kind == "rich_text":
        return "\n".join(children)
    if kind == "rich_text_list":
        return "\n".join("• " + child for child in children)
    return "".join(children)
