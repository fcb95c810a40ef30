"""What the adapters report goes to the metrics, and the tokens they obtain to the log
redactor (so a rotated token is scrubbed from every log line from the moment it exists)."""

from __future__ import annotations

from bot.metrics import METRICS
from bot.redact import REDACTOR


class BotObserver:
    """The adapters' ``RequestObserver`` in the bot."""

    def request(self, system: str, outcome: str) -> None:
        METRICS.request(system, outcome)

    def retry(self, system: str, reason: str) -> None:
        METRICS.retry(system, reason)

    def secret(self, value: str) -> None:
        REDACTOR.learn(value)


OBSERVER = BotObserver()
