"""Times in each reader's own time zone: messages carry Slack's date tokens (the UTC text is
only the fallback), and the emulator renders them in the reader's users.info zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from commands.blocks import wait_message
from commands.format import fmt_clock, fmt_moment, fmt_when, localize
from sandbox.slack.render import Renderer, mrkdwn, slack_date
from sandbox.slack.state import ALICE, BOB, SlackState

MOMENT = datetime(2026, 11, 30, 14, 5, 9, tzinfo=UTC)
EPOCH = int(MOMENT.timestamp())


def test_moments_are_slack_date_tokens_with_the_utc_text_as_fallback() -> None:
    assert (
        fmt_moment(MOMENT)
        == f"<!date^{EPOCH}^{{date_short_pretty}} {{time}}|Nov 30, 2026 14:05 UTC>"
    )
    assert fmt_clock(MOMENT) == f"<!date^{EPOCH}^{{time_secs}}|14:05:09 UTC>"
    later = datetime(2026, 11, 30, 16, 6, tzinfo=UTC)
    assert fmt_when(MOMENT, now=later).endswith("|Nov 30, 2026 14:05 UTC> (2 hours ago)")
    assert "UTC" not in wait_message("portal", MOMENT).text.split("|")[0]


def test_the_services_layers_utc_text_is_localized_after_escaping() -> None:
    text = localize("Changed on 2026-11-30 14:05 UTC &lt;b&gt;, synced never")
    assert text == (
        f"Changed on <!date^{EPOCH - 9}^{{date_short_pretty}} {{time}}|2026-11-30 14:05 UTC> "
        "&lt;b&gt;, synced never"
    )


def test_tokens_render_in_the_readers_zone() -> None:
    now = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
    york, london = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")
    assert slack_date(EPOCH, "{date_short_pretty} {time}", york, now) == "today 09:05"
    assert slack_date(EPOCH, "{time_secs}", london, now) == "14:05:09"
    late = int(datetime(2026, 12, 1, 2, 0, tzinfo=UTC).timestamp())  # Nov 30 in New York
    assert slack_date(late, "{date_num} {date_short}", york, now) == "2026-11-30 Nov 30, 2026"
    assert slack_date(late, "{date_long}", london, now) == "Tuesday, December 1st, 2026"
    assert slack_date(EPOCH, "{date_pretty}", york, datetime(2026, 12, 1, 15, tzinfo=UTC)) == (
        "yesterday"
    )
    assert slack_date(EPOCH, "{ago}", york, now) == "354 minutes ago"


def test_the_emulator_shows_each_user_their_own_zone() -> None:
    state = SlackState(clock=lambda: MOMENT.timestamp() + 3600)
    text = f"Checked {fmt_moment(MOMENT)}"
    assert mrkdwn(state, text) == "Checked today 14:05"  # no reader: UTC
    renderer = Renderer(state, reader=ALICE.id)
    assert renderer.text(text) == "Checked today 09:05"
    assert Renderer(state, reader=BOB.id).text(text) == "Checked today 14:05"
    assert ALICE.tz == "America/New_York" and BOB.tz == "Europe/London"
