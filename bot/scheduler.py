"""The daily digest's schedule: APScheduler on DIGEST_CRON in DIGEST_TIMEZONE.

The only module that imports apscheduler. The job is a plain coroutine function of the
container (``scheduled_digest`` by default), so a wrapper, such as a lease shared by the
replicas, can be put around it without touching the scheduling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from bot.bootstrap import Container
from bot.flows.digest import scheduled_digest

log = logging.getLogger(__name__)

Job = Callable[[Container], Coroutine[Any, Any, Any]]
JOB_ID = "daily-digest"


DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) as day names. APScheduler numbers the
    days from Monday = 0, so ``1-5`` handed to it as is would mean Tuesday to Saturday."""
    names: list[str] = []
    for item in field.lower().split(","):
        part, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if part == "*":
            first, last = 0, 6
        elif part.isdigit():
            first = last = int(part)
        elif "-" in part and all(p.isdigit() for p in part.split("-", 1)):
            first, last = (int(p) for p in part.split("-", 1))
        else:
            names.append(item)  # names are the same for both: leave them to APScheduler
            continue
        if not 0 <= first <= last <= 7 or step < 1:
            raise ValueError(f"day of week {item!r} out of range")
        names.extend(DAY_NAMES[day % 7] for day in range(first, last + 1, step))
    return ",".join(dict.fromkeys(names))


def digest_trigger(cron: str, timezone: str) -> CronTrigger:
    """The cron trigger, or ValueError naming the setting that is wrong."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"DIGEST_TIMEZONE is not a time zone: {timezone!r}") from None
    try:
        fields = cron.split()
        if len(fields) != 5:
            raise ValueError(f"5 fields expected, {len(fields)} given")
        minute, hour, day, month, weekdays = fields
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=crontab_weekdays(weekdays),
            timezone=zone,
        )
    except ValueError as exc:
        raise ValueError(f"DIGEST_CRON is not a crontab expression ({exc}): {cron!r}") from None


def once_at(moment: datetime) -> BaseTrigger:
    """A trigger that fires once, at ``moment`` (tests; an admin's "run it at nine")."""
    return DateTrigger(run_date=moment)


class DigestScheduler:
    """Runs ``job`` on the trigger (one at a time); start it inside the running event loop."""

    def __init__(
        self, deps: Container, *, job: Job | None = None, trigger: BaseTrigger | None = None
    ) -> None:
        settings = deps.settings
        self._deps = deps
        self._job: Job = job or scheduled_digest
        self.trigger = trigger or digest_trigger(settings.digest_cron, settings.digest_timezone)
        self._scheduler = AsyncIOScheduler(timezone=ZoneInfo(settings.digest_timezone))
        self._scheduler.add_job(
            self.fire,
            self.trigger,
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
        )

    def start(self) -> None:
        self._scheduler.start()
        log.info("daily digest scheduled; next run at %s", self.next_run_time)

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    @property
    def next_run_time(self) -> datetime | None:
        job = self._scheduler.get_job(JOB_ID)
        return job.next_run_time if job is not None else None

    async def fire(self) -> None:
        """One scheduled run, tracked with the bot's other background work (a long job)."""
        task = self._deps.tasks.spawn_long(self._job(self._deps), name="digest:scheduled")
        if task is not None:
            await task


def start_scheduler(deps: Container) -> DigestScheduler | None:
    """The running schedule, or None when the digest is off or has no channel."""
    settings = deps.settings
    if not settings.digest_enabled:
        log.info("scheduled digest off (DIGEST_ENABLED=false)")
        return None
    if not settings.digest_channel:
        log.info("scheduled digest off: set DIGEST_CHANNEL to post it")
        return None
    scheduler = DigestScheduler(deps)
    scheduler.start()
    return scheduler
