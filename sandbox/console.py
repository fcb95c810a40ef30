"""The console: a Slack client in the terminal, on top of the Slack emulator.

Type a slash command (``/invoice check 11260``), press a button by number (``click 3``),
pick a date (``click 4 2026-11-25``). Messages, thread replies, edits and ephemerals are
printed as they happen. Read from a pipe, each line waits until the work it started has
settled (the bot is not busy and Slack has been quiet for a moment) before the next is
read, so a scripted session always prints the same thing.

Confirm dialogs are not asked: the console prints the dialog's title and text and
accepts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TextIO

from sandbox.portal_payments import take_payment
from sandbox.portal_state import PortalState
from sandbox.slack_emulator import ClickError, SlackEmulator
from sandbox.slack_state import Change

HELP = """\
The console understands:
  /invoice <args>       send a slash command (any /command), e.g. /invoice check 11260
  click N               press button [N]
  click N YYYY-MM-DD    pick a date in date picker [N]
  show                  print every message again, each with its thread
  pay N AMOUNT [REF]    (sandbox) a client pays AMOUNT on invoice N in the portal; the
                        portal posts it to QuickBooks, which may refuse it
  help                  this list
  quit, exit            leave (the end of the input works too)
Buttons keep their number for the whole session. Confirm dialogs are shown and accepted.
Messages marked "only visible to you" are ephemeral; "↳" lines are thread replies."""

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
    ) -> None:
        self.emulator = emulator
        self.portal = portal
        self.pay_wait = pay_wait
        """After ``pay``, how long to wait for the bot to notice (its alert poll)."""
        self._references = (f"CB-{n}" for n in itertools.count(9001))
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
                self.write(self.emulator.renderer.change(change) + "\n")

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
            self.write(self.emulator.transcript(user=self.user) or "(no messages yet)")
        elif line.startswith("/"):
            await self.emulator.send_line(line, channel=self.channel, user=self.user)
        elif word == "click":
            await self.click(line.split()[1:])
        elif word == "pay" and self.portal is not None:
            await self.pay(line.split()[1:])
        else:
            self.write(HINT)
        return True

    async def click(self, args: list[str]) -> None:
        if not args or not args[0].isdigit():
            self.write("Which button? click N (and a date for a date picker: click N YYYY-MM-DD)")
            return
        number, value = int(args[0]), (args[1] if len(args) > 1 else None)
        try:
            _, entry = self.emulator.element(number, user=self.user)
            confirm = entry.confirm
            if confirm:
                title = _text(confirm.get("title"))
                self.write(f"Confirm dialog: {title}: {_text(confirm.get('text'))} (accepted)")
            reply = await self.emulator.click(number, value, user=self.user)
        except ClickError as exc:
            self.write(str(exc))
            return
        if entry.kind == "datepicker" and value:
            sent = "" if reply is not None else " (sent with the next button you press)"
            self.write(f"[{number}] {entry.label}: {value}{sent}")

    async def pay(self, args: list[str]) -> None:
        assert self.portal is not None
        usage = "pay N AMOUNT [REF], e.g. pay 11264 5.00"
        if len(args) not in (2, 3):
            self.write(usage)
            return
        number, raw = args[0], args[1].removeprefix("$")
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            amount = Decimal(0)
        invoice = self.portal.invoices.get(number)
        if invoice is None or not amount.is_finite() or amount <= 0:
            self.write(f"(sandbox) No such invoice or amount in the portal. {usage}")
            return
        reference = args[2] if len(args) == 3 else next(self._references)
        paid = await take_payment(self.portal, number, amount, reference=reference)
        result = {
            "posted": "posted to QuickBooks",
            "failed": f"refused by QuickBooks: {paid.transfer_error}",
        }.get(paid.transfer_status, "not transferred yet (QuickBooks did not answer)")
        self.write(
            f"(sandbox) A client paid ${paid.amount} on invoice {number} in the portal "
            f"({reference}): {result}"
        )
        if self.pay_wait > 0:
            await asyncio.sleep(self.pay_wait)

    async def settle(self) -> None:
        done = await self.emulator.wait_for_quiet(
            quiet=self.quiet, timeout=self.settle_timeout, is_busy=self.is_busy
        )
        self.flush()
        if not done:
            self.write(f"(still busy after {self.settle_timeout:g} s; going on)")

    async def run(self, input_stream: TextIO) -> None:
        lines = _read_lines(input_stream)
        watcher = asyncio.create_task(self.watch())
        settled = False
        try:
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
                if not self.interactive:
                    await self.settle()
                    settled = True
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
) -> None:
    """Run the console until ``quit`` or the end of ``input_stream``.

    ``interactive`` defaults to whether ``input_stream`` is a terminal: then a prompt is
    shown and messages print as they arrive; otherwise each line is echoed (``> line``)
    and followed by a wait until the bot is idle (``is_busy()`` False) and Slack has been
    quiet for ``quiet`` seconds (at most ``settle_timeout``)."""
    if interactive is None:
        interactive = input_stream.isatty()
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
    )
    await console.run(input_stream)
