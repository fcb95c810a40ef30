"""Bad input, generated: thousands of command strings and button payloads (forged, oversized,
malformed JSON, wrong types, unknown actions), signed and sent through the real bolt app
in-process. Each gets a usage error or a valid action, never an unhandled exception, and
nothing happens unless the input was valid: no work started, no QuickBooks or portal
request, no audit row, no job."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from bot.app import build_app
from bot.bootstrap import Container
from bot.context import REPLY
from bot.http import SLACK_PATH, build_http_app
from bot.tasks import TaskRunner
from commands.actions import ActionId, ButtonState
from commands.parse import Check, Command, Help, ResyncInvoice, parse
from sandbox.slack.emulator import SlackEmulator
from sandbox.slack.signing import sign
from services.errors import UsageError
from tests.emulator_support import Untouchable, emulator_bot

# FUZZ_EXAMPLES=5000 for a deeper run by hand; the suite keeps to a few seconds.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "250"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class RecordingTasks(TaskRunner):
    """Runs the private replies a request leaves behind; records the other work a listener
    starts, without running it."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []

    def spawn(self, work: Any, *, name: str, on_error: Any = None) -> Any:
        if name == REPLY:
            return super().spawn(work, name=name, on_error=on_error)
        self.started.append(name)
        work.close()
        return None


@dataclass
class Harness:
    client: httpx.AsyncClient
    emulator: SlackEmulator
    container: Container
    tasks: RecordingTasks
    ports: list[Untouchable] = field(default_factory=list)

    async def post(self, body: bytes) -> httpx.Response:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(self.emulator.signing_secret, timestamp, body),
        }
        response = await self.client.post(SLACK_PATH, content=body, headers=headers)
        await self.tasks.drain(timeout=5)  # the private replies, after the ack
        return response

    def replies(self) -> int:
        return len(self.emulator.state.calls_to("response_url"))

    def last_reply(self) -> str:
        return str(self.emulator.state.calls_to("response_url")[-1].params)

    def assert_no_port_used(self) -> None:
        assert [p.calls for p in self.ports] == [[], []]

    async def assert_nothing_changed(self) -> None:
        self.assert_no_port_used()
        assert await self.container.audit.recent() == []
        assert await self.container.jobs.recent() == []


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with SlackEmulator(signing_secret="fuzz-signing-secret") as emulator:
        accounting, portal = Untouchable(), Untouchable()
        container = await emulator_bot(emulator, tmp_path / "fuzz.db", accounting, portal)
        tasks = RecordingTasks()
        container.tasks = tasks
        app = build_http_app(build_app(container), container)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
                harness = Harness(client, emulator, container, tasks, [accounting, portal])
                yield harness
            await harness.assert_nothing_changed()  # after every example: no row written
        finally:
            await container.aclose()


# -- commands -------------------------------------------------------------------------
WORDS = st.sampled_from(
    ["check", "resync", "history", "help", "digest", "company", "contact", "--since",
     "11260", "#11260", "INV-0042", "2026-11-25", "2026-02-30", "99999999999999999999999",
     "CHECK", "Resync", "\u2019", "\x00", "\u202e", "`", "<@U123>", "*", "\t", "\n"]
)  # fmt: skip
COMMAND_TEXTS = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(WORDS, st.text(max_size=25)), max_size=6).map(" ".join),
)


@settings(max_examples=EXAMPLES * 3, deadline=None)
@given(text=COMMAND_TEXTS)
def test_parse_gives_a_command_or_a_usage_error(text: str) -> None:
    try:
        command: Command = parse(text)
    except UsageError as exc:
        assert exc.message and len(exc.message) < 300
        return
    if isinstance(command, Check | ResyncInvoice):
        assert 1 <= len(command.number) <= 21 and command.number in text
        assert not set(command.number) & set(" `*<>&\n\t")


@FUZZ
@given(text=COMMAND_TEXTS, user=st.text(max_size=12), channel=st.text(max_size=12))
async def test_any_command_text_gets_a_usage_error_or_a_valid_action(
    harness: Harness, text: str, user: str, channel: str
) -> None:
    started, replies = len(harness.tasks.started), harness.replies()
    form = {"command": "/invoice", "text": text, "user_id": user, "channel_id": channel}
    response_url = f"{harness.emulator.base_url}/response/x"
    form |= {"team_id": "T0SANDBOX1", "trigger_id": "1.2.3", "response_url": response_url}
    body = urlencode(form).encode()
    response = await harness.post(body)
    if b"payload" in body:  # bolt reads any such form as a click, and finds none (404)
        assert response.status_code == 404 and len(harness.tasks.started) == started
        return
    assert response.status_code == 200
    assert harness.replies() == replies  # what the person sees is in the ack itself
    try:
        command = parse(text)
    except UsageError:
        assert "Usage" in response.text and len(harness.tasks.started) == started
        return
    if isinstance(command, Help):
        assert "/invoice check NUMBER" in response.text
        assert len(harness.tasks.started) == started
    else:
        assert response.text == "" and len(harness.tasks.started) == started + 1
    harness.assert_no_port_used()


# -- button payloads ------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
STATES = st.builds(
    lambda invoice, since, root: ButtonState(invoice=invoice, since=since, root=root).dump(),
    st.none() | st.from_regex(r"^[A-Za-z0-9._/-]{1,21}$", fullmatch=True),
    st.none() | st.dates(),
    st.none() | st.from_regex(r"^\d{1,12}\.\d{1,8}$", fullmatch=True),
)
FORGED = st.fixed_dictionaries(
    {},
    optional={
        "v": st.integers(-1, 3) | st.text(max_size=3),
        "invoice": JSON | st.text(max_size=40),
        "since": JSON | st.text(max_size=12),
        "root": JSON,
        "admin": st.booleans(),
    },
).map(json.dumps)
VALUES = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.text(min_size=1990, max_size=2100),
    JSON.map(json.dumps),
    JSON,
    STATES,
    FORGED,
    STATES.map(lambda s: s[:-1]),  # truncated JSON
)
ACTION_IDS = st.sampled_from([a.value for a in ActionId]) | st.text(max_size=30) | JSON


def click(action_id: Any, value: Any, response_url: str) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": "U0ALICE001", "name": "alice"},
        "team": {"id": "T0SANDBOX1"},
        "channel": {"id": "C0FINANCE1"},
        "container": {"type": "message", "message_ts": "1.2", "channel_id": "C0FINANCE1"},
        "message": {"ts": "1.2", "text": "x", "blocks": []},
        "response_url": response_url,
        "trigger_id": "1.2.3",
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value}],
    }


@st.composite
def payloads(draw: st.DrawFn) -> tuple[Any, bool]:
    """A click payload, and whether its shape was left as Slack sends it."""
    payload: Any = click(draw(ACTION_IDS), draw(VALUES), "RESPONSE_URL")
    intact = True
    for key in draw(st.lists(st.sampled_from(sorted(payload)), max_size=3, unique=True)):
        intact = False
        if draw(st.booleans()):
            del payload[key]
        else:
            payload[key] = draw(JSON)
    if draw(st.integers(0, 20)) == 0:
        payload, intact = draw(JSON), False  # not even an object
    return payload, intact


def sound_state(action_id: Any, value: Any) -> bool:
    """Whether a click of ``action_id`` carrying ``value`` should start work."""
    try:
        state = ButtonState.load(value)
    except (UsageError, TypeError):
        return False
    if action_id in (
        ActionId.RESYNC_INVOICE.value,
        ActionId.RESYNC_ANYWAY.value,
        ActionId.CHECK_AGAIN.value,
        ActionId.PREPARE_FIX.value,
    ):
        return state.invoice is not None
    if action_id in (ActionId.APPROVE_FIX.value, ActionId.REJECT_FIX.value):
        return state.proposal is not None
    if action_id == ActionId.START_FULL_RESYNC.value:
        return state.since is not None
    if action_id in (ActionId.MARK_ACCOUNTED.value, ActionId.CONFIRM_ACCOUNTED.value):
        return state.invoice is not None and state.followup is not None
    return bool(action_id == ActionId.RESYNC_FULL.value)


@settings(FUZZ, max_examples=EXAMPLES)
@given(drawn=payloads())
async def test_any_click_gets_a_not_valid_answer_or_a_valid_action(
    harness: Harness, drawn: tuple[Any, bool], caplog: pytest.LogCaptureFixture
) -> None:
    payload, intact = drawn
    caplog.set_level(logging.ERROR)
    started, replies = len(harness.tasks.started), harness.replies()
    raw = json.dumps(payload).replace("RESPONSE_URL", f"{harness.emulator.base_url}/response/x")
    response = await harness.post(urlencode({"payload": raw}).encode())
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    new_work = len(harness.tasks.started) - started
    answered = harness.replies() - replies
    note(f"payload={payload!r} status={response.status_code} work={new_work} answers={answered}")
    if response.status_code != 200:
        # A payload bolt cannot read (400) or routes nowhere (404): never sent by Slack.
        assert not intact and response.status_code in (400, 404), response.text
        assert (new_work, answered) == (0, 0)
        return
    if intact:
        action = payload["actions"][0]
        wanted = sound_state(action["action_id"], action["value"])
        assert new_work == (1 if wanted else 0)
        if wanted:  # all of it in the work started (the date prompt's answer too)
            assert answered == 0
        else:  # "not valid any more", privately; a date picked is only acknowledged
            picked = action["action_id"] in (ActionId.PICK_SYNC_DATE, ActionId.ACCOUNTED_REASON)
            text = action["value"] is None or isinstance(action["value"], str)
            assert answered == (0 if picked and text else 1)
    elif new_work:
        action = payload["actions"][0]
        assert new_work == 1 and sound_state(action["action_id"], action["value"])
    harness.assert_no_port_used()


async def test_a_short_burst_of_bad_input_changes_nothing(harness: Harness) -> None:
    texts = ["check 11260", "resync 11260", "check", "resync company ;drop", "help"]
    for text in texts:
        await harness.post(urlencode({"command": "/invoice", "text": text}).encode())
    for text in ["check payload", "resync company payload"]:  # bolt took these for clicks
        response = await harness.post(urlencode({"command": "/invoice", "text": text}).encode())
        assert response.status_code == 200  # bot.forms: read as the forms they are
    for value in ['{"invoice": "11260"}', '{"v": 2}', "x" * 3000, None]:
        payload = click(ActionId.RESYNC_INVOICE.value, value, f"{harness.emulator.base_url}/r/x")
        await harness.post(urlencode({"payload": json.dumps(payload)}).encode())
    assert harness.tasks.started == [
        "work:command",  # check 11260
        "work:command",  # resync 11260
        "work:command",  # company "payload": looked up, not found, answered privately
        f"work:{ActionId.RESYNC_INVOICE}",
    ]
    await harness.assert_nothing_changed()


async def test_a_click_with_an_unusable_response_url_is_answered_without_an_error(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by the fuzzer: the private "not valid" answer could not be delivered to a
    forged response_url, and that failure surfaced as a 500 with an error logged."""
    caplog.set_level(logging.WARNING)
    started = len(harness.tasks.started)
    for url in ("", "not a url", "ftp://x"):
        payload = click(ActionId.RESYNC_INVOICE.value, "forged", url)
        response = await harness.post(urlencode({"payload": json.dumps(payload)}).encode())
        assert response.status_code == 200
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("could not answer" in r.getMessage() for r in caplog.records)
    assert len(harness.tasks.started) == started
