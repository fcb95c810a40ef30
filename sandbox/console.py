"""The console: a Slack client in the terminal, on top of the Slack emulator.

Type a slash command (``/invoice check 11260``), press a button by number (``click 3``),
pick a date (``click 4 2026-11-25``). Messages, thread replies, edits and ephemerals are
printed as they happen, Slack's mrkdwn rendered for a terminal (bold, links, emoji,
mentions). Each line waits until the work it started has settled (the bot is not busy and
Slack has been quiet for a moment) before the prompt comes back (at most a few seconds,
typed; later messages still print as they come) or, read from a pipe, before the next line
is read, so a scripted session always prints the same thing.

Confirm dialogs are printed, not asked: ``click N`` accepts one, ``click N --cancel``
declines it (nothing is sent to the bot, as in Slack). Uploaded files are numbered:
``open N`` shows one (a CSV as a table), ``save N PATH`` writes it to a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TextIO

from sandbox.console_files import open_file, save_file
from sandbox.console_pay import ClientPayments
from sandbox.portal.payments import wait_for_transfers
from sandbox.portal.state import PortalState
from sandbox.qbo.state import QboState
from sandbox.qbo.verbs import run_qbo_verb
from sandbox.slack.actions import ClickError
from sandbox.slack.emulator import SlackEmulator
from sandbox.slack.render import Renderer
from sandbox.slack.state import Change

HELP = """\
The console understands:
  /invoice <args>       send a slash command (any /command), e.g. /invoice check 11260
  click N               press button [N] (and accept its confirm dialog, if it has one)
  click N --cancel      open button [N]'s confirm dialog and decline it: nothing is sent
  click N YYYY-MM-DD    pick a date in date picker [N]
  type TEXT             type TEXT into the newest text box shown to you (then press
                        its button, e.g. the reason for Mark accounted for)
  show                  print every message again, each with its thread
  open N                show uploaded file [file N] (a CSV as a table)
  save N PATH           save uploaded file [file N] to PATH
  pay N AMOUNT [REF]    (sandbox) a client pays AMOUNT on invoice N in the portal; the
                        portal posts it to QuickBooks, which may refuse it
  qbo pay N AMOUNT [REF]  (sandbox) a payment recorded by hand in QuickBooks on invoice N
  qbo change N AMOUNT   (sandbox) invoice N edited in QuickBooks: AMOUNT now due
  as USER               type as another person from now on (as bob, as alice)
  help                  this list
  quit, exit            leave (the end of the input works too)
Buttons and files keep their number for the whole session. Messages marked "only visible
to you" are ephemeral; "↳" lines are thread replies."""

HINT = "Not understood. Type a slash command (/invoice help), click N, or help."


def _never_busy() -> bool:
    return False


class Console:
    def __init__(
        self,
        emulator: SlackEmulator,
        *,
        output: TextIO,
        is_busy: Callable[[], bool] = _never_busy,
        channel: str | None = None,
        user: str | None = None,
        quiet: float = 0.5,
        settle_timeout: float = 120.0,
        interactive: bool = False,
        portal: PortalState | None = None,
        pay_wait: float = 0.0,
        ansi: bool = False,
        typed_settle: float = 10.0,
        qbo: QboState | None = None,
        qbo_wait: float = 0.0,
    ) -> None:
        self.emulator = emulator
        self.renderer = Renderer(emulator.state, ansi=ansi, reader=user or emulator.user)
        """Bold and italics as terminal styles with ``ansi`` (a terminal), else plain."""
        self.typed_settle = typed_settle
        """Typed: how long the prompt waits for the answer to settle, at most."""
        self.portal = portal
        self.payments = ClientPayments(portal, self.write) if portal is not None else None
        self.pay_wait = pay_wait
        """After ``pay``, how long to wait for the bot to notice (its alert poll)."""
        self.qbo = qbo
        self.qbo_wait = qbo_wait
        """After a ``qbo`` verb, how long to wait for the bot (webhook, grace, re-check)."""
        self.state = emulator.state
        self.output = output
        self.is_busy = is_busy
        self.channel = channel or emulator.channel
        self.user = user or emulator.user
        self.quiet = quiet
        self.settle_timeout = settle_timeout
        self.interactive = interactive
        self.cursor = 0
        """How many of ``state.changes`` have been printed (or skipped as not ours)."""
        self._prompting = False
        self._reading = False
        """Waiting for the next input line (the only time a prompt makes sense)."""

    # -- output ---------------------------------------------------------------------------

    def write(self, text: str) -> None:
        if self._prompting:
            self.output.write("\n")
            self._prompting = False
        self.output.write(text if text.endswith("\n") else text + "\n")
        self.output.flush()

    def prompt(self) -> None:
        if self.interactive and self._reading and not self._prompting:
            self.output.write("> ")
            self.output.flush()
            self._prompting = True

    def flush(self) -> None:
        """Print every change not printed yet that this user can see."""
        changes = self.state.changes
        while self.cursor < len(changes):
            change = changes[self.cursor]
            self.cursor += 1
            if self._visible(change):
                self.write(self.renderer.change(change) + "\n")

    def _visible(self, change: Change) -> bool:
        return change.message.ephemeral_to in (None, self.user)

    async def watch(self) -> None:
        """Print changes as they happen (runs until cancelled)."""
        while True:
            await self.state.wait_for_change(timeout=1.0)
            if self.cursor < len(self.state.changes):
                self.flush()
                self.prompt()

    # -- input ----------------------------------------------------------------------------

    async def handle(self, line: str) -> bool:
        """Run one input line; False when the person asked to leave."""
        line = line.strip()
        if not line:
            return True
        word = line.split()[0].lower()
        if word in ("quit", "exit"):
            return False
        if word == "help":
            self.write(HELP)
        elif word == "show":
            self.flush()
            self.write(self.renderer.transcript(self.user) or "(no messages yet)")
        elif line.startswith("/"):
            await self.emulator.send_line(line, channel=self.channel, user=self.user)
        elif word == "click":
            await self.click(line.split()[1:])
        elif word == "type":
            self.type_text(line.split(maxsplit=1)[1] if " " in line else "")
        elif word == "open":
            files = list(self.state.files.values())
            self.write(open_file(files, self.renderer, line.split()[1:]))
        elif word == "save":
            self.write(save_file(list(self.state.files.values()), line.split(maxsplit=2)[1:]))
        elif word == "pay" and self.payments is not None:
            if await self.payments.pay(line.split()[1:]) and self.pay_wait > 0:
                await asyncio.sleep(self.pay_wait)  # the bot's alert poll notices
        elif word == "qbo" and self.qbo is not None:
            self.write(run_qbo_verb(self.qbo, line.split()[1:], portal=self.portal))
            if self.qbo_wait > 0:  # the webhook, then the bot's re-check after its grace
                await asyncio.sleep(self.qbo_wait)
        elif word == "as":
            self.switch_user(line.split()[1:])
        else:
            self.write(HINT)
        return True

    def type_text(self, text: str) -> None:
        """Fill the newest text input the person can see (Slack sends what is typed with
        the next button pressed in that message)."""
        state = self.emulator.state
        for message in reversed(list(state.messages.values())):
            if message.deleted or message.ephemeral_to not in (None, self.user):
                continue
            for block in message.blocks:
                element = block.get("element") or {}
                if block.get("type") == "input" and element.get("type") == "plain_text_input":
                    key = (message.ts, str(block.get("block_id")), str(element.get("action_id")))
                    state.selections[key] = {"type": "plain_text_input", "value": text}
                    self.write(f"Typed into {_text(block.get('label')) or 'the text box'}.")
                    return
        self.write("There is no text box to type into.")

    def switch_user(self, args: list[str]) -> None:
        """``as bob``: type as another person of the workspace from now on."""
        wanted = args[0].lstrip("@").lower() if args else ""
        people = [u for u in self.state.users.values() if not u.is_bot and u.name != "slackbot"]
        found = next((u for u in people if wanted in (u.name.lower(), u.id.lower())), None)
        if found is None:
            names = ", ".join(f"@{u.name}" for u in people)
            self.write(f"Usage: as USER (one of {names}).")
            return
        self.user = found.id
        self.write(f"You are now @{found.name}.")

    async def click(self, args: list[str]) -> None:
        cancel = "--cancel" in args
        args = [a for a in args if a != "--cancel"]
        if not args or not args[0].isdigit():
            self.write(
                "Which button? click N (click N --cancel to decline its confirm dialog; "
                "a date for a date picker: click N YYYY-MM-DD)"
            )
            return
        number, value = int(args[0]), (args[1] if len(args) > 1 else None)
        try:
            _, entry = self.emulator.element(number, user=self.user)
            confirm = entry.confirm
            if cancel and not confirm:
                self.write(
                    f"[{number}] {entry.label} asks for no confirmation: nothing to decline. "
                    f"Not pressed; click {number} presses it."
                )
                return
            if confirm:
                title = self.renderer.text(_text(confirm.get("title")))
                text = self.renderer.text(_text(confirm.get("text")))
                yes = _text(confirm.get("confirm")) or "Yes"
                no = _text(confirm.get("deny")) or "Cancel"
                if cancel:
                    self.write(
                        f"Confirm dialog: {title}: {text} [{yes}] [{no}]\n"
                        f"Declined ({no}): nothing was sent to the bot, nothing ran."
                    )
                    return
                self.write(f"Confirm dialog: {title}: {text} (accepted: {yes})")
            reply = await self.emulator.click(number, value, user=self.user)
        except ClickError as exc:
            self.write(str(exc))
            return
        if entry.kind == "datepicker" and value:
            sent = "" if reply is not None else " (sent with the next button you press)"
            self.write(f"[{number}] {entry.label}: {value}{sent}")

    async def settle(self) -> None:
        timeout = self.typed_settle if self.interactive else self.settle_timeout
        done = await self.emulator.wait_for_quiet(
            quiet=self.quiet, timeout=timeout, is_busy=self.is_busy
        )
        self.flush()
        if not done and not self.interactive:  # typed: later messages print as they come
            self.write(f"(still busy after {self.settle_timeout:g} s; going on)")

    def banner(self) -> str:
        state = self.state
        user, channel = state.user(self.user), state.channel(self.channel)
        who = f"@{user.name}" if user else self.user
        where = f"#{channel.name}" if channel else self.channel
        return (
            f"Slack console · workspace {state.team.name} · you are {who} in {where} · "
            f"the bot is @{state.bot.name}\n"
            "Type a slash command (/invoice help lists the bot's), click N to press "
            "button [N], help for the rest."
        )

    async def run(self, input_stream: TextIO) -> None:
        lines = _read_lines(input_stream)
        watcher = asyncio.create_task(self.watch())
        settled = False
        try:
            self.write(self.banner())
            self.flush()
            while True:
                self._reading = True
                self.prompt()
                line = await lines.get()
                self._reading = False
                if line is None:
                    break
                self._prompting = False  # the terminal echoed the newline
                if not line.strip():
                    continue
                if not self.interactive:
                    self.write(f"> {line.rstrip()}")
                settled = False
                if not await self.handle(line):
                    break
                await self.settle()  # the answer first, then the prompt
                settled = True
            if self.portal is not None and self.portal.transfers:
                await wait_for_transfers(self.portal)  # then the alert poll notices
                await asyncio.sleep(self.pay_wait)
                settled = False
            if not settled:
                await self.settle()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        self.flush()


def _text(obj: object) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)


def _read_lines(stream: TextIO) -> asyncio.Queue[str | None]:
    """Lines of ``stream`` read by a daemon thread (a slow pipe or a person typing never
    blocks the loop the bot runs in); None at the end."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def put(item: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def read() -> None:
        try:
            for line in iter(stream.readline, ""):
                put(line)
        except (OSError, ValueError):
            pass
        put(None)

    threading.Thread(target=read, name="console-input", daemon=True).start()
    return queue


async def run_console(
    emulator: SlackEmulator,
    *,
    input_stream: TextIO,
    output: TextIO,
    is_busy: Callable[[], bool] = _never_busy,
    channel: str | None = None,
    user: str | None = None,
    quiet: float = 0.5,
    settle_timeout: float = 120.0,
    interactive: bool | None = None,
    portal: PortalState | None = None,
    pay_wait: float = 0.0,
    ansi: bool | None = None,
    qbo: QboState | None = None,
    qbo_wait: float = 0.0,
) -> None:
    """Run the console until ``quit`` or the end of ``input_stream``.

    ``interactive`` defaults to whether ``input_stream`` is a terminal: then a prompt is
    shown and messages print as they arrive; otherwise each line is echoed (``> line``)
    and followed by a wait until the bot is idle (``is_busy()`` False) and Slack has been
    quiet for ``quiet`` seconds (at most ``settle_timeout``)."""
    if interactive is None:
        interactive = input_stream.isatty()
    if ansi is None:
        ansi = output.isatty()
    console = Console(
        emulator,
        output=output,
        is_busy=is_busy,
        channel=channel,
        user=user,
        quiet=quiet,
        settle_timeout=settle_timeout,
        interactive=interactive,
        portal=portal,
        pay_wait=pay_wait,
        ansi=ansi,
        qbo=qbo,
        qbo_wait=qbo_wait,
    )
    await console.run(input_stream)
