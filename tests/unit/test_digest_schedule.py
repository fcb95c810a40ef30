"""The digest's schedule: DIGEST_CRON read in DIGEST_TIMEZONE, and clear errors for bad values."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.scheduler import digest_trigger


def test_weekday_mornings_in_the_configured_time_zone() -> None:
    trigger = digest_trigger("0 8 * * 1-5", "Europe/Paris")
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, friday_evening)
    assert fire == datetime(2026, 11, 30, 8, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert fire.astimezone(UTC).hour == 7  # Paris is UTC+1 in November


@pytest.mark.parametrize(
    ("cron", "zone", "setting"),
    [
        ("0 8 * *", "UTC", "DIGEST_CRON"),
        ("0 25 * * *", "UTC", "DIGEST_CRON"),
        ("0 8 * * *", "Mars/Base", "DIGEST_TIMEZONE"),
    ],
)
def test_a_bad_setting_is_named(cron: str, zone: str, setting: str) -> None:
    with pytest.raises(ValueError, match=setting):
        digest_trigger(cron, zone)


@pytest.mark.parametrize(
    ("weekdays", "fires_on"),
    [
        ("1-5", "Mon"),
        ("0", "Sun"),
        ("7", "Sun"),
        ("6,0", "Sat"),
        ("*/3", "Sat"),
        ("2-3", "Tue"),
        ("sat", "Sat"),
    ],
)
def test_crontab_day_numbers_start_on_sunday(weekdays: str, fires_on: str) -> None:
    trigger = digest_trigger(f"0 8 * * {weekdays}", "UTC")
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert f"{trigger.get_next_fire_time(None, friday_evening):%a}" == fires_on
