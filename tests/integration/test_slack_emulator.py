"""The Slack emulator against the real slack_sdk client over loopback, and its signing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.server import serving
from sandbox.slack.api import RateLimit
from sandbox.slack.emulator import SlackEmulator
from sandbox.slack.signing import Signing
from sandbox.slack.state import ALICE, FINANCE, SlackState

SECRET = "test-signing-secret"
GO = {
    "type": "button",
    "action_id": "go",
    "value": "11260",
    "text": {"type": "plain_text", "text": "Go"},
}
BUTTON = {"type": "actions", "block_id": "acts", "elements": [GO]}


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(signing_secret=SECRET) as emu:
        yield emu


def client_for(emu: SlackEmulator, token: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(token=token or emu.bot_token, base_url=emu.api_url)


async def test_post_thread_update_ephemeral_are_recorded(emulator: SlackEmulator) -> None:
    client = client_for(emulator)
    auth = await client.auth_test()
    assert auth["user_id"] == emulator.state.bot.user_id
    assert auth["bot_id"] == emulator.state.bot.bot_id

    root = await client.chat_postMessage(channel=FINANCE.id, text="root", blocks=[BUTTON])
    assert root["channel"] == FINANCE.id
    assert root["message"]["blocks"][0]["elements"][0]["action_id"] == "go"
    reply = await client.chat_postMessage(channel="#finance", text="queued", thread_ts=root["ts"])
    assert float(reply["ts"]) > float(root["ts"])
    await client.chat_update(channel=FINANCE.id, ts=reply["ts"], text="running")
    await client.chat_update(channel=FINANCE.id, ts=reply["ts"], text="done")
    eph = await client.chat_postEphemeral(channel=FINANCE.id, user=ALICE.id, text="psst")
    link = await client.chat_getPermalink(channel=FINANCE.id, message_ts=reply["ts"])
    assert reply["ts"].replace(".", "") in link["permalink"]

    state = emulator.state
    assert [m.text for m in state.history(FINANCE.id)] == ["root"]
    [threaded] = state.replies(FINANCE.id, root["ts"])
    assert [v.text for v in threaded.versions] == ["queued", "running", "done"]
    assert threaded.thread_ts == root["ts"]
    [ephemeral] = state.ephemerals(ALICE.id)
    assert ephemeral.ts == eph["message_ts"] and ephemeral.text == "psst"
    methods = [c.method for c in state.calls]
    assert methods.count("chat.update") == 2 and "chat.postEphemeral" in methods
    assert state.calls_to("chat.postMessage")[1].params["thread_ts"] == root["ts"]

    users = await client.users_info(user=ALICE.id)
    assert users["user"]["name"] == "alice" and users["user"]["tz"] == "America/New_York"
    channel = await client.conversations_info(channel=FINANCE.id)
    assert channel["channel"]["name"] == "finance"


async def test_files_upload_v2_end_to_end(emulator: SlackEmulator) -> None:
    client = client_for(emulator)
    root = await client.chat_postMessage(channel=FINANCE.id, text="root")
    content = "number,action\n11260,updated\n11261,created\n"
    result = await client.files_upload_v2(
        channel=FINANCE.id,
        thread_ts=root["ts"],
        filename="records.csv",
        title="Processed records",
        content=content,
        initial_comment="All processed records",
    )
    assert result["file"]["title"] == "Processed records"
    [upload] = emulator.state.files.values()
    assert upload.content == content.encode() and upload.thread_ts == root["ts"]
    [message] = emulator.state.replies(FINANCE.id, root["ts"])
    assert message.files == [upload] and message.text == "All processed records"
    assert "[file 1] records.csv · Processed records (2 rows" in emulator.transcript()


async def test_errors_answer_200_with_ok_false(emulator: SlackEmulator) -> None:
    client = client_for(emulator)
    with pytest.raises(SlackApiError) as wrong:
        await client_for(emulator, "xoxb-wrong").chat_postMessage(channel=FINANCE.id, text="x")
    assert wrong.value.response.status_code == 200
    assert wrong.value.response["error"] == "invalid_auth"

    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("message_not_found", "chat.update", {"channel": FINANCE.id, "ts": "1.0", "text": "x"}),
        ("channel_not_found", "chat.postMessage", {"channel": "C0NOPE", "text": "x"}),
        ("no_text", "chat.postMessage", {"channel": FINANCE.id}),
        (
            "thread_not_found",
            "chat.postMessage",
            {"channel": FINANCE.id, "text": "x", "thread_ts": "2.0"},
        ),
        ("unknown_method", "chat.nope", {}),
    ]
    for error, method, args in cases:
        with pytest.raises(SlackApiError) as exc:
            await client.api_call(method, json=args)
        assert exc.value.response["error"] == error

    eph = await client.chat_postEphemeral(channel=FINANCE.id, user=ALICE.id, text="psst")
    with pytest.raises(SlackApiError) as cant:
        await client.chat_update(channel=FINANCE.id, ts=eph["message_ts"], text="x")
    assert cant.value.response["error"] == "cant_update_message"

    too_long = {
        "type": "button",
        "action_id": "a",
        "text": {"type": "plain_text", "text": "x" * 76},
    }
    with pytest.raises(SlackApiError) as invalid:
        await client.chat_postMessage(
            channel=FINANCE.id, text="x", blocks=[{"type": "actions", "elements": [too_long]}]
        )
    assert invalid.value.response["error"] == "invalid_blocks"
    assert "/blocks/0/elements/0/text/text" in invalid.value.response["errors"][0]


async def test_form_encoded_blocks_as_json_string(emulator: SlackEmulator) -> None:
    client = client_for(emulator)
    data = {"channel": FINANCE.id, "text": "hi", "blocks": json.dumps([BUTTON])}
    response = await client.api_call("chat.postMessage", data=data)
    assert response["ok"]
    [message] = emulator.state.history(FINANCE.id)
    assert message.blocks[0]["elements"][0]["value"] == "11260"


async def test_rate_limit_knob_answers_429_with_retry_after(emulator: SlackEmulator) -> None:
    client = client_for(emulator)
    for _ in range(5):  # off by default
        await client.chat_postMessage(channel=FINANCE.id, text="fast")
    emulator.api.rate_limit = RateLimit(per_second=1, burst=2)
    await client.chat_postMessage(channel=FINANCE.id, text="1")
    await client.chat_postMessage(channel=FINANCE.id, text="2")
    with pytest.raises(SlackApiError) as limited:
        await client.chat_postMessage(channel=FINANCE.id, text="3")
    response = limited.value.response
    assert response.status_code == 429 and response["error"] == "ratelimited"
    assert int(response.headers["Retry-After"]) >= 1
    await client.chat_postMessage(channel="C0GENERAL1", text="other channel is fine")
    assert emulator.state.calls_to("chat.postMessage")[-2].error == "ratelimited"


# -- the client side: signed requests to a bot ----------------------------------------------


class FakeBot:
    """A Starlette endpoint that checks Slack's signature with slack_sdk and records what
    it received; ``answer`` decides the reply."""

    def __init__(self) -> None:
        self.verifier = SignatureVerifier(SECRET)
        self.received: list[dict[str, Any]] = []
        self.answer: Callable[[dict[str, Any]], Awaitable[Response]] = self._empty
        self.app = Starlette(routes=[Route("/slack/events", self.events, methods=["POST"])])

    @staticmethod
    async def _empty(form: dict[str, Any]) -> Response:
        return Response(status_code=200)

    async def events(self, request: Request) -> Response:
        body = await request.body()
        valid = self.verifier.is_valid_request(body, dict(request.headers))
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        self.received.append({"valid": valid, "form": form, "headers": dict(request.headers)})
        if not valid:
            return Response("invalid signature", status_code=401)
        return await self.answer(form)


@pytest.fixture
async def bot(emulator: SlackEmulator) -> AsyncIterator[FakeBot]:
    fake = FakeBot()
    async with serving(fake.app) as url:
        emulator.request_url = f"{url}/slack/events"
        yield fake


async def test_requests_are_signed_like_slack(emulator: SlackEmulator, bot: FakeBot) -> None:
    reply = await emulator.send_command("/invoice", "check 11260")
    assert reply.status == 200
    first = bot.received[0]
    assert first["valid"]
    form = first["form"]
    assert form["command"] == "/invoice" and form["text"] == "check 11260"
    assert form["user_id"] == ALICE.id and form["channel_id"] == FINANCE.id
    assert form["response_url"].startswith(f"{emulator.base_url}/response/")

    stale = await emulator.send_command("/invoice", "x", signing=Signing(stale=True))
    wrong = await emulator.send_command("/invoice", "x", signing=Signing(wrong_signature=True))
    assert stale.status == wrong.status == 401
    assert [r["valid"] for r in bot.received] == [True, False, False]
    notices = [m.text for m in emulator.state.ephemerals(ALICE.id)]
    assert notices == ['/invoice failed with the error "dispatch_failed"'] * 2

    await emulator.send_command("/invoice", "x", signing=Signing(retry_num=1))
    headers = bot.received[-1]["headers"]
    assert headers["x-slack-retry-num"] == "1" and headers["x-slack-retry-reason"]


async def test_ack_body_is_shown_like_slack(emulator: SlackEmulator, bot: FakeBot) -> None:
    async def usage(form: dict[str, Any]) -> Response:
        if form["text"] == "loud":
            return JSONResponse({"response_type": "in_channel", "text": "for everyone"})
        return JSONResponse({"text": "Usage: /invoice check <number>"})

    bot.answer = usage
    await emulator.send_command("/invoice", "")
    await emulator.send_command("/invoice", "loud")
    [ephemeral] = emulator.state.ephemerals(ALICE.id)
    assert ephemeral.text.startswith("Usage:")
    assert [m.text for m in emulator.state.history(FINANCE.id)] == ["for everyone"]


async def test_slow_ack_is_an_operation_timeout(emulator: SlackEmulator, bot: FakeBot) -> None:
    async def slow(form: dict[str, Any]) -> Response:
        await asyncio.sleep(0.5)
        return Response()

    bot.answer = slow
    emulator.ack_timeout = 0.1
    reply = await emulator.send_command("/invoice", "check 1")
    assert reply.error == "operation_timeout"
    assert "operation_timeout" in emulator.state.ephemerals(ALICE.id)[0].text


async def test_response_url_posts_replaces_and_expires(
    emulator: SlackEmulator, bot: FakeBot
) -> None:
    now = [1_800_000_000.0]
    emulator.state.clock = lambda: now[0]
    await emulator.send_command("/invoice", "history")
    url = bot.received[-1]["form"]["response_url"]
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, json={"text": "working"})).text == "ok"
        [first] = emulator.state.ephemerals(ALICE.id)
        await http.post(url, json={"text": "done", "replace_original": True})
        assert [v.text for v in first.versions] == ["working", "done"]
        await http.post(url, json={"text": "shared", "response_type": "in_channel"})
        assert [m.text for m in emulator.state.history(FINANCE.id)] == ["shared"]
        assert (await http.post(url, json={})).status_code == 400  # no_text: a use
        assert (await http.post(url, json={"text": "5th"})).status_code == 200
        used = await http.post(url, json={"text": "6th"})
        assert (used.status_code, used.text) == (404, "used_url")

        await emulator.send_command("/invoice", "history")
        fresh = bot.received[-1]["form"]["response_url"]
        now[0] += 31 * 60
        expired = await http.post(fresh, json={"text": "late"})
        assert (expired.status_code, expired.text) == (404, "expired_url")


async def test_wait_for_quiet(emulator: SlackEmulator) -> None:
    client = client_for(emulator)
    busy = [True]

    async def work() -> None:
        await asyncio.sleep(0.1)
        await client.chat_postMessage(channel=FINANCE.id, text="late")
        busy[0] = False

    task = asyncio.create_task(work())
    assert await emulator.wait_for_quiet(quiet=0.05, timeout=5, is_busy=lambda: busy[0])
    assert [m.text for m in emulator.state.history(FINANCE.id)] == ["late"]
    await task
    assert not await emulator.wait_for_quiet(quiet=0.05, timeout=0.1, is_busy=lambda: True)


async def test_state_ts_strictly_increasing() -> None:
    state = SlackState(clock=lambda: 1_732_950_000.0)
    stamps = [state.next_ts() for _ in range(3)]
    assert stamps == ["1732950000.000000", "1732950000.000001", "1732950000.000002"]


async def test_a_bolt_app_works_against_the_emulator(emulator: SlackEmulator) -> None:
    """bolt's own signature check, auth.test, say(), respond() and an action round trip."""
    client = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    bolt = AsyncApp(client=client, signing_secret=SECRET)

    async def on_command(ack: Any, say: Any, respond: Any) -> None:
        await ack()
        await say(text="hi", blocks=[BUTTON])
        await respond(text="only you")

    async def on_go(ack: Any, respond: Any, body: dict[str, Any]) -> None:
        await ack()
        await respond(replace_original=True, text=f"pressed by <@{body['user']['id']}>")

    bolt.command("/invoice")(on_command)
    bolt.action("go")(on_go)
    handler = AsyncSlackRequestHandler(bolt)

    async def events(request: Request) -> Response:
        response: Response = await handler.handle(request)
        return response

    app = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
    async with serving(app) as url:
        emulator.request_url = f"{url}/slack/events"
        refused = await emulator.send_command("/invoice", "x", signing=Signing(stale=True))
        assert refused.status == 401 and not emulator.state.history(FINANCE.id)

        assert (await emulator.send_command("/invoice", "check 11260")).status == 200
        assert await emulator.wait_for_quiet(quiet=0.05, timeout=5)
        await emulator.click(emulator.number_of("Go"))
        assert await emulator.wait_for_quiet(quiet=0.05, timeout=5)

    [root] = emulator.state.history(FINANCE.id)
    assert [v.text for v in root.versions] == ["hi", f"pressed by <@{ALICE.id}>"]
    assert [m.text for m in emulator.state.ephemerals(ALICE.id)][-1] == "only you"
    assert "pressed by @alice" in emulator.transcript()
