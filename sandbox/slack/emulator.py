"""The Slack emulator: serves the Web API the bot calls (``SlackApi``) and plays the Slack
client: sends signed slash commands and button clicks to the bot's request URL.

    emulator = SlackEmulator(signing_secret="secret")
    async with emulator:                       # serves on loopback
        bot_client = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
        emulator.request_url = "http://127.0.0.1:3000/slack/events"
        await emulator.send_command("/invoice", "check 11260")
        await emulator.wait_for_quiet()
        await emulator.click(emulator.number_of("Resync invoice"))
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from sandbox.server import RunningServer, start_server
from sandbox.slack.actions import ClickError, action_for, state_values
from sandbox.slack.api import RateLimit, SlackApi
from sandbox.slack.blocks import Element, initial_state, interactive_elements
from sandbox.slack.render import Renderer
from sandbox.slack.responses import ResponseError, deliver
from sandbox.slack.signing import BotReply, Signing, signed_headers, socket_envelope
from sandbox.slack.state import (
    ALICE,
    FINANCE,
    SLACKBOT,
    Channel,
    Message,
    ResponseUrl,
    SlackState,
    User,
)


class SlackEmulator:
    def __init__(
        self,
        *,
        signing_secret: str,
        bot_token: str = "xoxb-sandbox-token",
        request_url: str | None = None,
        state: SlackState | None = None,
        channel: str = FINANCE.id,
        user: str = ALICE.id,
        ack_timeout: float = 3.0,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self.state = state or SlackState()
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.request_url = request_url
        """Where slash commands and interactions go (the bot's ``/slack/events``)."""
        self.channel = channel
        self.user = user
        self.ack_timeout = ack_timeout
        self.verification_token = "sandbox-verification-token"
        self.api = SlackApi(self.state, token=bot_token, rate_limit=rate_limit)
        self.app = self.api.app
        self.kill_switch = self.api.kill_switch
        """Kill a bot process right after a chosen answer of the Web API (sandbox.kill)."""
        """The Starlette app: serve it yourself (then set ``base_url``) or use ``start()``."""
        self.base_url: str | None = None
        """Where the app is served, e.g. ``http://127.0.0.1:8123`` (set by ``start()``)."""
        self.renderer = Renderer(self.state)
        self._server: RunningServer | None = None
        self._http: httpx.AsyncClient | None = None
        self._counter = 0

    # -- serving --------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """``base_url`` for ``AsyncWebClient``: ``http://127.0.0.1:PORT/api/``."""
        return f"{self._base()}/api/"

    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the API on loopback in this loop; returns the base URL."""
        self._server = await start_server(self.app, host=host, port=port)
        self.base_url = self._server.url
        return self.base_url

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def __aenter__(self) -> SlackEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- slash commands -------------------------------------------------------------------

    async def send_command(
        self,
        command: str,
        text: str = "",
        *,
        channel: str | None = None,
        user: str | None = None,
        signing: Signing | None = None,
    ) -> BotReply:
        """Send ``/command text`` as ``user`` in ``channel``, signed, like Slack. An ack body
        with text or blocks is shown as Slack shows it (ephemeral unless ``in_channel``)."""
        where, who = self._channel(channel), self._user(user)
        target = self._response_url("command", where, who)
        form = {
            "token": self.verification_token,
            "team_id": self.state.team.id,
            "team_domain": self.state.team.domain,
            "channel_id": where.id,
            "channel_name": where.name,
            "user_id": who.id,
            "user_name": who.name,
            "command": command,
            "text": text,
            "api_app_id": self.state.bot.app_id,
            "is_enterprise_install": "false",
            "response_url": self._url(f"/response/{target.token}"),
            "trigger_id": self._trigger_id(),
        }
        reply = await self.send_signed(urlencode(form).encode(), signing=signing)
        self._show_ack(reply, target, command)
        return reply

    async def send_line(
        self,
        line: str,
        *,
        channel: str | None = None,
        user: str | None = None,
        signing: Signing | None = None,
    ) -> BotReply:
        """``send_line("/invoice check 11260")``: a slash command as a person types it."""
        command, _, text = line.strip().partition(" ")
        return await self.send_command(
            command, text.strip(), channel=channel, user=user, signing=signing
        )

    def _show_ack(self, reply: BotReply, target: ResponseUrl, command: str) -> None:
        if reply.error or not 200 <= reply.status < 300:
            error = reply.error or "dispatch_failed"
            self._notice(target, f'{command} failed with the error "{error}"')
            return
        body = reply.json()
        if isinstance(body, dict):
            if body.get("text") or body.get("blocks"):
                try:
                    deliver(self.state, target, body)
                except ResponseError as exc:
                    self._notice(target, f'{command} failed with the error "{exc.error}"')
        elif reply.body.strip():
            deliver(self.state, target, {"text": reply.body})

    def _notice(self, target: ResponseUrl, text: str) -> None:
        """Slack's own ephemeral note to the user (from Slackbot)."""
        self.state.post(target.channel, text=text, user=SLACKBOT.id, ephemeral_to=target.user)

    # -- buttons --------------------------------------------------------------------------

    def element(self, number: int, *, user: str | None = None) -> tuple[Message, Element]:
        """The message and element that carry button number ``number`` right now."""
        key = self.state.element_key(number)
        if key is None:
            raise ClickError(f"There is no button [{number}].")
        ts, action_id, option = key
        message = self.state.messages[ts]
        if message.deleted:
            raise ClickError(f"[{number}] is gone: its message was deleted.")
        who = self._user(user)
        if message.ephemeral_to not in (None, who.id):
            raise ClickError(f"[{number}] is in a message only someone else can see.")
        for entry in interactive_elements(message.blocks):
            if (entry.action_id, entry.option) == (action_id, option):
                return message, entry
        raise ClickError(f"[{number}] is no longer there: its message was updated.")

    def number_of(self, label: str) -> int:
        """The number of the newest element still shown whose label contains ``label``."""
        for number in sorted(self.state.elements_by_number, reverse=True):
            try:
                _, entry = self.element(number)
            except ClickError:
                continue
            if label.lower() in entry.label.lower():
                return number
        raise ClickError(f"No button labelled {label!r} is shown.")

    async def click(
        self,
        number: int,
        value: str | None = None,
        *,
        user: str | None = None,
        signing: Signing | None = None,
    ) -> BotReply | None:
        """Press element ``number`` (``value``: the date for a date picker, "HH:MM" for a
        time picker). Sends block_actions with the message the element is in. Returns None
        when nothing is sent (a picker inside an input block only sets state, like Slack).
        Confirm dialogs are accepted without asking."""
        message, entry = self.element(number, user=user)
        who = self._user(user)
        key = (message.ts, entry.block_id, entry.action_id)
        picked = self.state.selections.get(key) or initial_state(entry.element)
        action = action_for(entry, value, number, picked)
        if picked is not None:
            picked = dict(picked)
            for name in ("selected_date", "selected_time", "selected_option", "selected_options"):
                if name in action:
                    picked[name] = action[name]
            self.state.selections[key] = picked
            self.state.touch()
        if not entry.dispatches:
            return None
        channel = self._channel(message.channel)
        target = self._response_url("action", channel, who, source_ts=message.ts)
        team = self.state.team
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": channel.id,
            "is_ephemeral": message.ephemeral_to is not None,
        }
        if message.thread_ts:
            container["thread_ts"] = message.thread_ts
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": who.id, "username": who.name, "name": who.name, "team_id": team.id},
            "api_app_id": self.state.bot.app_id,
            "token": self.verification_token,
            "container": container,
            "trigger_id": self._trigger_id(),
            "team": {"id": team.id, "domain": team.domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel.id, "name": channel.name},
            "response_url": self._url(f"/response/{target.token}"),
            "actions": [action],
        }
        if message.ephemeral_to is None:  # Slack leaves the message out for ephemerals
            payload["message"] = message.payload(team.id)
        values = state_values(self.state, message)
        if values:
            payload["state"] = {"values": values}
        reply = await self.send_interaction(payload, signing=signing)
        if reply.error or not 200 <= reply.status < 300:
            error = reply.error or f"HTTP {reply.status}"
            self._notice(target, f"{self.state.bot.name} did not handle [{number}] ({error}).")
        return reply

    # -- sending --------------------------------------------------------------------------

    async def send_interaction(
        self, payload: dict[str, Any], *, signing: Signing | None = None
    ) -> BotReply:
        """Send any interactive payload (``payload=<json>`` form field), signed."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.send_signed(body, signing=signing)

    async def send_signed(
        self,
        body: bytes,
        *,
        signing: Signing | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> BotReply:
        """POST ``body`` to ``request_url`` with Slack's signature headers; with no
        ``request_url`` and an app connected in Socket Mode, send it over the socket."""
        if not self.request_url and self.api.sockets.connected:
            return await self._send_socket(body)
        if not self.request_url:
            raise RuntimeError("SlackEmulator.request_url is not set")
        headers = signed_headers(
            self.signing_secret, body, signing=signing or Signing(), content_type=content_type
        )
        if self._http is None:
            self._http = httpx.AsyncClient()
        self.state.in_flight += 1
        try:
            response = await self._http.post(
                self.request_url, content=body, headers=headers, timeout=self.ack_timeout
            )
        except httpx.TimeoutException:
            return BotReply(0, "", "operation_timeout")
        except httpx.TransportError:
            return BotReply(0, "", "dispatch_failed")
        finally:
            self.state.in_flight -= 1
            self.state.touch()
        return BotReply(response.status_code, response.text)

    async def _send_socket(self, body: bytes) -> BotReply:
        kind, payload = socket_envelope(body)
        self.state.in_flight += 1
        try:
            ack = await self.api.sockets.deliver(kind, payload, timeout=self.ack_timeout)
        except ConnectionError:
            return BotReply(0, "", "dispatch_failed")
        finally:
            self.state.in_flight -= 1
            self.state.touch()
        if ack is None:
            return BotReply(0, "", "operation_timeout")
        response = ack.get("payload")
        return BotReply(200, json.dumps(response) if response else "")

    # -- waiting and reading --------------------------------------------------------------

    async def wait_for_quiet(
        self,
        *,
        quiet: float = 0.5,
        timeout: float = 120.0,
        is_busy: Callable[[], bool] | None = None,
    ) -> bool:
        """Wait until ``is_busy()`` (if given) is False and nothing happened on the Slack side
        for ``quiet`` seconds; False if ``timeout`` passed first."""
        return await self.state.wait_for_quiet(quiet=quiet, timeout=timeout, is_busy=is_busy)

    def transcript(self, *, user: str | None = None) -> str:
        """Every channel message with its thread below it, as the console renders them."""
        return self.renderer.transcript(self._user(user).id)

    # -- helpers --------------------------------------------------------------------------

    def _base(self) -> str:
        if not self.base_url:
            raise RuntimeError("SlackEmulator is not serving: call start() or set base_url")
        return self.base_url.rstrip("/")

    def _url(self, path: str) -> str:
        return self._base() + path

    def _channel(self, channel: str | None) -> Channel:
        found = self.state.channel(channel or self.channel)
        if found is None:
            raise ValueError(f"unknown channel {channel!r}")
        return found

    def _user(self, user: str | None) -> User:
        found = self.state.user(user or self.user)
        if found is None:
            raise ValueError(f"unknown user {user!r}")
        return found

    def _response_url(
        self,
        kind: Literal["command", "action"],
        channel: Channel,
        user: User,
        source_ts: str | None = None,
    ) -> ResponseUrl:
        self._counter += 1
        token = f"{self._counter}-{secrets.token_urlsafe(9)}"
        target = ResponseUrl(token, kind, channel.id, user.id, self.state.clock(), source_ts)
        self.state.response_urls[token] = target
        return target

    def _trigger_id(self) -> str:
        self._counter += 1
        return f"{self._counter}.{self.state.team.id}.{secrets.token_hex(16)}"
