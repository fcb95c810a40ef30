"""The console against a small fake bot (not the real one): rendering, stable button
numbers, clicks, edits, date pickers, help and settling."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Coroutine
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.console import run_console
from sandbox.server import serving
from sandbox.slack.emulator import SlackEmulator
from sandbox.slack.state import ALICE, FINANCE

SECRET = "console-secret"


def button(text: str, action_id: str, value: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
        **extra,
    }


DIGEST_CSV = "invoice,customer,difference\n11260,Best Tackle,10.00\n11264,Geeta Kalapatapu,5.00\n"
CONFIRM = {
    "title": {"type": "plain_text", "text": "Full resync?"},
    "text": {"type": "mrkdwn", "text": "Re-reads every record since yesterday."},
    "confirm": {"type": "plain_text", "text": "Start"},
    "deny": {"type": "plain_text", "text": "Cancel"},
}


def check_blocks(number: str, *, fixed: bool = False) -> list[dict[str, Any]]:
    buttons = [button("Resync full integration", "resync_full", number, confirm=CONFIRM)]
    if not fixed:
        buttons.insert(0, button("Resync invoice", "resync_invoice", number))
    verdict = "In sync" if fixed else "*Out of sync* by $10.00"
    return [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"Invoice {number} · Best Tackle"},
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*QuickBooks*\n$50.00"},
                {"type": "mrkdwn", "text": "*Portal*\n" + ("$50.00" if fixed else "$40.00")},
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": verdict}]},
        {"type": "actions", "block_id": f"act-{fixed}", "elements": buttons},
    ]


PROMPT = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Full resync from:"}},
    {
        "type": "actions",
        "block_id": "prompt",
        "elements": [
            {
                "type": "datepicker",
                "action_id": "pick_date",
                "initial_date": "2026-11-29",
                "placeholder": {"type": "plain_text", "text": "Sync from"},
            },
            button("Start full resync", "start_full", "go"),
        ],
    },
]


class FakeBot:
    """Acks at once and does its work in the background, like the real bot: `/invoice check`
    posts a message with buttons; Resync invoice reports in the thread (one message edited
    queued → running → done) then updates the root; `/invoice resync` shows a private
    date-picker prompt."""

    def __init__(self, emulator: SlackEmulator) -> None:
        self.client = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
        self.received: list[dict[str, Any]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.app = Starlette(routes=[Route("/slack/events", self.events, methods=["POST"])])

    def busy(self) -> bool:
        return bool(self.tasks)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def events(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if "payload" in form:
            payload = json.loads(form["payload"])
            self.received.append(payload)
            self.spawn(self.on_action(payload))
            return Response()
        self.received.append(form)
        words = form.get("text", "").split()
        if words[:1] == ["check"]:
            self.spawn(self.check(form["channel_id"], words[1]))
        elif words[:1] == ["resync"]:
            return JSONResponse({"text": "Full resync", "blocks": PROMPT})
        elif words[:1] == ["digest"]:
            self.spawn(self.digest(form["channel_id"]))
        else:
            return JSONResponse({"text": "Usage: /invoice check <number>"})
        return Response()

    async def check(self, channel: str, number: str) -> None:
        await asyncio.sleep(0.05)
        await self.client.chat_postMessage(
            channel=channel, text="check", blocks=check_blocks(number)
        )

    async def digest(self, channel: str) -> None:
        text = (
            f"*Daily digest*: 2 discrepancies :warning: for <@{ALICE.id}>, "
            "see <https://portal.example/digest|the portal> and ~old~ _new_ `code`"
        )
        root = await self.client.chat_postMessage(channel=channel, text=text)
        await self.client.files_upload_v2(
            channel=channel,
            thread_ts=root["ts"],
            filename="digest.csv",
            title="Discrepancies",
            content=DIGEST_CSV,
        )

    async def on_action(self, payload: dict[str, Any]) -> None:
        action = payload["actions"][0]
        if action["action_id"] != "resync_invoice":
            return
        channel, root = payload["channel"]["id"], payload["message"]["ts"]
        progress = await self.client.chat_postMessage(
            channel=channel, thread_ts=root, text="Queued"
        )
        for status in ("Running", "Done: the portal now says $50.00"):
            await asyncio.sleep(0.05)
            await self.client.chat_update(channel=channel, ts=progress["ts"], text=status)
        blocks = check_blocks(action["value"], fixed=True)
        await self.client.chat_update(channel=channel, ts=root, text="fixed", blocks=blocks)


@pytest.fixture
async def world() -> AsyncIterator[tuple[SlackEmulator, FakeBot]]:
    async with SlackEmulator(signing_secret=SECRET) as emulator:
        bot = FakeBot(emulator)
        async with serving(bot.app) as url:
            emulator.request_url = f"{url}/slack/events"
            yield emulator, bot


async def console(emulator: SlackEmulator, bot: FakeBot, script: str) -> str:
    output = io.StringIO()
    await run_console(
        emulator,
        input_stream=io.StringIO(script),
        output=output,
        is_busy=bot.busy,
        quiet=0.05,
        settle_timeout=5,
    )
    return output.getvalue()


async def test_check_click_edits_and_stable_numbers(world: tuple[SlackEmulator, FakeBot]) -> None:
    emulator, bot = world
    out = await console(emulator, bot, "/invoice check 11260\nclick 1\nclick 1\nclick 2\n")

    assert "> /invoice check 11260" in out
    assert "invoicebot in #finance · msg 1\n" in out
    assert "# Invoice 11260 · Best Tackle" in out
    assert "QuickBooks $50.00   Portal $40.00" in out  # bold, shown plain in a pipe
    assert "[1] Resync invoice  [2] Resync full integration (asks to confirm)" in out
    # the progress message, edited in place, each version printed under its root
    for status in ("Queued", "Running", "Done: the portal now says $50.00"):
        assert f"      {status}\n" in out
    assert "  ↳ invoicebot in thread of msg 1 · msg 2\n" in out
    assert out.count("  ↳ invoicebot in thread of msg 1 · msg 2 (edited)") == 2
    # the root is edited: Resync invoice is gone, Resync full integration keeps number 2
    assert "invoicebot in #finance · msg 1 (edited)" in out
    assert "\n  [2] Resync full integration (asks to confirm)\n" in out
    assert "[1] is no longer there: its message was updated." in out
    assert (
        "Confirm dialog: Full resync?: Re-reads every record since yesterday. (accepted: Start)"
        in out
    )

    click = bot.received[1]
    assert click["type"] == "block_actions"
    assert click["user"]["id"] == ALICE.id and click["channel"]["id"] == FINANCE.id
    [action] = click["actions"]
    assert (action["action_id"], action["value"], action["type"]) == (
        "resync_invoice",
        "11260",
        "button",
    )
    assert action["block_id"] == "act-False" and action["text"]["text"] == "Resync invoice"
    root = emulator.state.history(FINANCE.id)[0]
    assert click["container"] == {
        "type": "message",
        "message_ts": root.ts,
        "channel_id": FINANCE.id,
        "is_ephemeral": False,
    }
    assert click["message"]["ts"] == root.ts
    assert click["message"]["blocks"] == root.versions[0].blocks
    assert click["response_url"].startswith(f"{emulator.base_url}/response/")
    assert bot.received[2]["actions"][0]["action_id"] == "resync_full"


async def test_date_picker_state_goes_with_the_next_button(
    world: tuple[SlackEmulator, FakeBot],
) -> None:
    emulator, bot = world
    out = await console(emulator, bot, "/invoice resync\nclick 1\nclick 1 2026-11-25\nclick 2\n")
    assert "only visible to you" in out
    assert "[1] Sync from (initial 2026-11-29)  [2] Start full resync" in out
    assert "[1] is a date picker: click 1 YYYY-MM-DD" in out
    assert "[1] Sync from: 2026-11-25" in out
    picked, start = bot.received[1], bot.received[2]
    assert picked["actions"][0]["selected_date"] == "2026-11-25"
    assert picked["container"]["is_ephemeral"] is True and "message" not in picked
    values = start["state"]["values"]["prompt"]["pick_date"]
    assert values == {"type": "datepicker", "selected_date": "2026-11-25"}
    assert start["actions"][0]["action_id"] == "start_full"


async def test_help_hints_and_ack_replies(world: tuple[SlackEmulator, FakeBot]) -> None:
    emulator, bot = world
    out = await console(
        emulator, bot, "help\n\nhello\nclick\nclick 7\n/invoice\nshow\nquit\nhelp\n"
    )
    assert "click N YYYY-MM-DD" in out and "quit, exit" in out
    assert "Not understood." in out
    assert "Which button?" in out
    assert "There is no button [7]." in out
    assert "Usage: /invoice check <number>" in out
    assert out.count("> help") == 1  # nothing is read after quit
    assert "> \n" not in out  # blank lines are ignored


async def test_settles_on_busy_bot_and_gives_up_at_the_cap(
    world: tuple[SlackEmulator, FakeBot],
) -> None:
    emulator, _ = world
    output = io.StringIO()
    await run_console(
        emulator,
        input_stream=io.StringIO("help\n"),
        output=output,
        is_busy=lambda: True,
        quiet=0.01,
        settle_timeout=0.2,
    )
    assert "(still busy after 0.2 s; going on)" in output.getvalue()


async def test_a_banner_first(world: tuple[SlackEmulator, FakeBot]) -> None:
    emulator, bot = world
    out = await console(emulator, bot, "")
    first, second = out.splitlines()[:2]
    assert first == (
        "Slack console · workspace Sandbox MSP · you are @alice in #finance · the bot is @invoicebot"
    )
    assert "/invoice help" in second and "help" in second


async def test_a_declined_confirm_sends_nothing(world: tuple[SlackEmulator, FakeBot]) -> None:
    emulator, bot = world
    out = await console(emulator, bot, "/invoice check 11260\nclick 2 --cancel\nclick 1 --cancel\n")
    assert (
        "Confirm dialog: Full resync?: Re-reads every record since yesterday. [Start] [Cancel]\n"
        "Declined (Cancel): nothing was sent to the bot, nothing ran." in out
    )
    assert "[1] Resync invoice asks for no confirmation: nothing to decline." in out
    assert [r.get("type") for r in bot.received] == [None]  # the command only: no click sent
    assert "(edited)" not in out


async def test_mrkdwn_as_terminal_text(world: tuple[SlackEmulator, FakeBot]) -> None:
    emulator, bot = world
    out = await console(emulator, bot, "/invoice digest\n")
    assert (
        "Daily digest: 2 discrepancies \u26a0\ufe0f for @alice, see the portal "
        "(https://portal.example/digest) and old new code"
    ) in out
    assert "[file 1] digest.csv · Discrepancies (2 rows" in out


def test_ansi_styles_for_a_terminal() -> None:
    from sandbox.slack.render import mrkdwn
    from sandbox.slack.state import SlackState

    text = mrkdwn(SlackState(), "*Out of sync* by _$10.00_ :white_check_mark: :custom:", ansi=True)
    assert text == "\x1b[1mOut of sync\x1b[0m by \x1b[3m$10.00\x1b[0m \u2705 :custom:"
    plain = mrkdwn(SlackState(), "sync_from 2*3 * 4 17:29:05 *a*b", ansi=False)
    assert plain == "sync_from 2*3 * 4 17:29:05 *a*b"  # not emphasis: left as typed


async def test_open_and_save_an_uploaded_file(
    world: tuple[SlackEmulator, FakeBot], tmp_path: Any
) -> None:
    emulator, bot = world
    target = tmp_path / "out.csv"
    out = await console(
        emulator, bot, f"/invoice digest\nopen 1\nsave 1 {target}\nopen 2\nsave 1\n"
    )
    assert "invoice  customer          difference\n-------  " in out
    assert "11264    Geeta Kalapatapu  5.00" in out and "(2 rows)" in out
    assert target.read_text() == DIGEST_CSV
    assert f"Saved [file 1] digest.csv ({len(DIGEST_CSV)} bytes) to {target}" in out
    assert "There is no [file 2] (files 1 to 1)." in out
    assert "save N PATH writes [file N] to PATH" in out


async def test_typed_the_prompt_comes_after_the_answer(
    world: tuple[SlackEmulator, FakeBot],
) -> None:
    emulator, bot = world
    output = io.StringIO()
    await run_console(
        emulator,
        input_stream=io.StringIO("/invoice check 11260\n"),
        output=output,
        is_busy=bot.busy,
        quiet=0.05,
        interactive=True,
    )
    out = output.getvalue()
    prompts = [i for i in range(len(out)) if out.startswith("> ", i)]
    assert len(prompts) == 2, out
    answer = out.index("# Invoice 11260 · Best Tackle")
    assert prompts[0] < answer < prompts[1]
