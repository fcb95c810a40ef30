"""All configuration, from the environment (or a .env file). One class, secrets as SecretStr."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.storage.token_crypto import TokenCipher, TokenKeyError
from services.watch import quiet_hours

PLACEHOLDERS = {"", "changeme", "change-me", "xoxb-your-token", "secret", "placeholder", "todo"}


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    # Slack
    slack_bot_token: SecretStr = SecretStr("")
    slack_signing_secret: SecretStr = SecretStr("")
    slack_app_token: SecretStr | None = None
    """`xapp-...`: when set (and SLACK_MODE is not http), the bot runs in Socket Mode."""
    slack_mode: Literal["auto", "socket", "http"] = "auto"
    slack_api_url: str = "https://slack.com/api/"
    slack_command: str = "/invoice"
    slack_channel_interval_seconds: float = 1.0
    """At most one message or update per channel this often (Slack's guidance: 1 a second)."""
    http_host: str = "0.0.0.0"
    http_port: int = 3000

    # QuickBooks Online
    qbo_base_url: str = "https://quickbooks.api.intuit.com"
    qbo_token_url: str = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
    qbo_realm_id: str = ""
    qbo_client_id: str = ""
    qbo_client_secret: SecretStr = SecretStr("")
    qbo_refresh_token: SecretStr | None = None
    """The first refresh token; the newest rotated one is kept in the database."""
    qbo_minor_version: int = 75
    qbo_timeout_seconds: float = 30.0
    qbo_max_retries: int = 4
    """Retries of one QuickBooks Online request (services.adapters.retries says which)."""
    qbo_retry_backoff_seconds: float = 0.5
    """The first retry waits a random time below this; each next one, below twice as long."""
    qbo_max_retry_wait_seconds: float = 60.0
    """The longest wait before a retry: a longer Retry-After is cut to it (a 429 without
    Retry-After waits a minute, so cut too)."""
    qbo_max_per_minute: int = 500
    """Requests started per minute, at most (Intuit's limit per company is 500)."""

    wait_notice_seconds: float = 5.0
    """A throttled request (QuickBooks or the portal) waiting longer than this is told to the
    person waiting for its answer, with the time it is sent again."""

    # Billing portal (Portal REST API, docs/portal-api.yaml)
    portal_base_url: str = "http://127.0.0.1:8081"
    portal_api_key: SecretStr = SecretStr("")
    portal_integration_id: str | None = None
    """Which integration a full resync runs; default: the first accounting integration."""
    portal_timeout_seconds: float = 30.0
    portal_max_retries: int = 3
    """Retries of one portal request, by the same rules as QuickBooks'."""
    portal_retry_backoff_seconds: float = 0.5
    portal_max_retry_wait_seconds: float = 60.0

    # State
    database_url: str = "sqlite+aiosqlite:///./invoicebot.db"
    token_encryption_key: SecretStr | None = None
    """Fernet key(s), comma separated, newest first: the QBO tokens are encrypted at rest
    with the first; any of them decrypts (key rotation). Unset: stored as they are."""

    # Who may run a full integration resync (Slack user ids / user group ids).
    # Neither set: everyone in the channel may.
    full_resync_users: CsvList = Field(default_factory=list)
    full_resync_groups: CsvList = Field(default_factory=list)

    # Fixes in QuickBooks: one person proposes, another approves (services.fixes).
    fix_approvers: CsvList = Field(default_factory=list)
    """Slack user ids (U...) and user group ids (S...) who may approve a fix in QuickBooks
    (never their own proposal). Unset: the feature is off."""
    fix_proposal_hours: float = Field(default=24.0, gt=0)
    """A proposal not approved within this many hours expires."""

    # Resync polling
    resync_poll_seconds: float = 2.0
    resync_timeout_seconds: float = 900.0
    resync_request_grace_seconds: float = 60.0
    """After a crash between asking the portal for a record resync and saving its id, how
    long the next run watches the invoice for that resync before asking again."""

    # Several replicas on one database
    replica_id: str | None = None
    """This process's name in job claims and leases (default: the host name, stable per
    deployment slot): a restarted process of the same slot takes its jobs back at once.
    A second live process under the same name gets a unique one (bot.identity)."""
    job_lease_seconds: float = 10.0
    """A job's claim lasts this long unless its runner renews it (every third of it): a
    crashed replica's jobs move to another replica after at most this long."""
    job_sweep_seconds: float = 3.0
    """How often each replica looks for jobs whose claim ran out (0: only at start)."""
    job_max_attempts: int = 5
    """A job claimed this many times without finishing is ended with an error."""
    work_process: bool = False
    """Run what Slack's requests ask for (checks, resyncs, digests asked for by command) in
    a worker process beside the one that acks them (bot/work.py): acks never wait on that
    work's CPU. Off: it runs in the same process, after the ack."""
    work_metrics_port: int | None = None
    """Where the worker process serves its own /metrics (default: HTTP_PORT + 1)."""

    # Discrepancies
    money_tolerance: Decimal = Field(default=Decimal("0.05"), ge=0)
    """Differences at or below this are rounding (tax computed apart): counted, not reported."""

    # Daily digest
    digest_cron: str = "0 8 * * 1-5"
    digest_timezone: str = "UTC"
    digest_channel: str | None = None
    digest_enabled: bool = True
    """The scheduled digest runs when this is on and DIGEST_CHANNEL is set."""
    digest_recent_minutes: float = 10.0
    """Invoices changed this recently on either side are left out (possibly mid-sync)."""
    digest_stale_minutes: float = 60.0
    """A digest still marked running after this long is taken as abandoned (a crash)."""
    digest_full_every: float = Field(default=7.0, ge=0)
    """Days between full digest scans. In between, with the QuickBooks watch running, a
    digest reads only what changed since the last complete one (0: always in full)."""
    # Failed-payment alerts (not waiting for the digest)
    alert_channel: str | None = None
    """Where a portal payment that failed to post to QuickBooks is announced (default:
    DIGEST_CHANNEL; neither set: no alerts)."""
    payment_alert_seconds: float = Field(default=60.0, ge=0)
    """How often the portal is asked for failed payment transfers (0: never)."""
    payment_alert_lookback_hours: float = Field(default=24.0, gt=0)
    """Failures older than this are left to the digest (a new install does not alert about
    last year's)."""

    # The QuickBooks watch (webhooks and CDC catch-up)
    qbo_webhook_verifier: SecretStr | None = None
    """The verifier token of the app's QuickBooks webhooks: ``POST /quickbooks/webhooks``
    accepts a delivery only when its ``intuit-signature`` matches (unset: refused)."""
    portal_sync_grace_minutes: float = Field(default=15.0, ge=0)
    """A change in QuickBooks is re-checked this long after, once the portal has synced."""
    alert_quiet_hours: str | None = None
    """``HH:MM-HH:MM`` in DIGEST_TIMEZONE: non-urgent watch alerts are left to the digest."""
    qbo_cdc_minutes: float = Field(default=60.0, ge=0)
    """How often QuickBooks' Change Data Capture is read from the last change seen (also at
    start and after a gap in webhook deliveries this long); 0: only at start."""

    qbo_lookup_batch: int = 1000
    """Document numbers per ``DocNumber IN (...)`` query (the digest's look-ups)."""
    qbo_list_concurrency: int = 10
    """Open-invoice pages fetched at once (after a count); 1 pages one after the other."""
    portal_lookup_concurrency: int = 4
    """Portal look-up batches (of 1000 numbers) in flight at once."""

    log_level: str = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in ("full_resync_users", "full_resync_groups", "fix_approvers"):
                for name in (key, key.upper()):
                    if name in data:
                        data[name] = _csv(data[name])
        return data

    @field_validator("alert_quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            quiet_hours(value)  # ValueError: refused at start, with the expected form
            return value.strip()
        return None

    @property
    def payment_alerts_channel(self) -> str | None:
        return self.alert_channel or self.digest_channel

    @property
    def socket_mode(self) -> bool:
        if self.slack_mode == "auto":
            return self.slack_app_token is not None
        return self.slack_mode == "socket"

    def check_secrets(self) -> Self:
        """Refuse to start with missing or placeholder secrets."""
        required: dict[str, SecretStr | None] = {
            "SLACK_BOT_TOKEN": self.slack_bot_token,
            "QBO_CLIENT_SECRET": self.qbo_client_secret,
            "PORTAL_API_KEY": self.portal_api_key,
        }
        if self.socket_mode:
            required["SLACK_APP_TOKEN"] = self.slack_app_token
        else:
            required["SLACK_SIGNING_SECRET"] = self.slack_signing_secret
        bad = [
            name
            for name, value in required.items()
            if value is None or value.get_secret_value().strip().lower() in PLACEHOLDERS
        ]
        for name, value in (
            ("QBO_REALM_ID", self.qbo_realm_id),
            ("QBO_CLIENT_ID", self.qbo_client_id),
        ):
            if not value.strip():
                bad.append(name)
        if bad:
            raise ValueError(f"Set these before starting the bot: {', '.join(sorted(bad))}")
        self.token_cipher()  # an unusable TOKEN_ENCRYPTION_KEY refuses to start, too
        return self

    def token_cipher(self) -> TokenCipher | None:
        """The cipher for tokens at rest, or None when no key is configured."""
        key = self.token_encryption_key
        if key is None or not key.get_secret_value().strip():
            return None
        try:
            return TokenCipher.from_setting(key.get_secret_value())
        except TokenKeyError as exc:
            raise ValueError(str(exc)) from None
