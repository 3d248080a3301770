"""Configuration from the environment (and an optional `.env`), read once per process.

Temporal's own connection settings (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS, API key) are not
here: they come from Temporal's standard environment configuration (`temporalio.envconfig`).
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.directory import is_time_zone


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Twilio (SMS and voice). Without SID, token and from-number, SMS and calls are dry runs.
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"

    # SendGrid (email). Without key and from-address, email is a dry run.
    sendgrid_api_key: SecretStr | None = None
    sendgrid_from_email: str | None = None
    sendgrid_api_host: str = "https://api.sendgrid.com"

    # The case store: SQLite by default, PostgreSQL e.g. postgresql+asyncpg://user@host/db
    database_url: str = "sqlite+aiosqlite:///data/outreach.db"

    # What messages say and where they point.
    practice_name: str = "Riverside Wellness Practice"
    practice_callback_number: str = "+15555550100"
    practice_time_zone: str = "America/New_York"

    @field_validator("practice_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        # Staff messages, pages and the case's own answers name times in it: a zone nobody
        # knows would fail each of them later, one at a time, in the middle of a case.
        if not is_time_zone(value):
            raise ValueError("not an IANA time zone this machine knows, e.g. America/New_York")
        return value

    # Told again while a case waits, when the therapist has no supervisor (email).
    practice_on_call_email: str | None = None

    temporal_task_queue: str = "missed-session-outreach"
    temporal_ui_url: str = "http://localhost:8233"

    # Worker logs: "text" (one line each, with case and step) or "json" (for log shippers).
    log_format: Literal["text", "json"] = "text"

    # Secrets kept in the case store (a CalDAV password) are encrypted with this key (Fernet,
    # urlsafe base64 of 32 bytes), or else with the key in `secrets_key_file`, created on first
    # use (mode 0600). Keep the key out of database backups: a dump alone reveals nothing.
    secrets_key: SecretStr | None = None
    secrets_key_file: str = "data/secrets.key"

    # Temporal history encrypted with AES-GCM: "id=base64key,older=base64key" (32-byte keys;
    # the first encrypts, all decrypt, so keys rotate). Unset: payloads are not encrypted.
    payload_keys: SecretStr | None = None

    # The web service (`starter.py serve`) and its codec server for the Web UI, which needs
    # `Authorization: Bearer <codec_server_token>`.
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"
    codec_server_token: SecretStr | None = None

    # The pages' links (close-out, client) are signed with this secret (at least 16 characters),
    # or else with the one in `link_secret_file`, created on first use (mode 0600). Worker and web
    # service must share it: set LINK_SECRET when they run on different machines. Changing it
    # invalidates every link sent so far (nothing else).
    link_secret: SecretStr | None = None
    link_secret_file: str = "data/link.key"
    # Messages carry the links when recipients can open them: "auto" = when PUBLIC_BASE_URL is
    # not a loopback address (the default is, and a link to 127.0.0.1 on a phone is useless).
    message_links: Literal["auto", "always", "never"] = "auto"
    staff_link_ttl_hours: int = Field(default=72, ge=1)  # every reminder carries a fresh one
    client_link_ttl_days: int = Field(default=14, ge=1)  # long enough to see the materials
    # Webhooks (`starter.py serve`): Twilio's are verified with TWILIO_AUTH_TOKEN against
    # PUBLIC_BASE_URL + path; SendGrid's signed event webhook with its verification key (the
    # base64 public key from Mail Settings), within a window of its signed timestamp.
    sendgrid_webhook_public_key: str | None = None
    sendgrid_webhook_max_age_seconds: int = 86400

    # The practice calendar sweep (a Temporal Schedule) and its default escalation policy.
    calendar_sweep_every_seconds: int = 60
    calendar_policy_file: str = "policies/default.toml"

    # The worker's Prometheus endpoint (Temporal's runtime metrics and the product's figures,
    # refreshed from the case store every `metrics_refresh_seconds`). Empty: no endpoint.
    metrics_address: str = "127.0.0.1:9464"
    metrics_refresh_seconds: float = 15.0

    # How often a placed call is polled until Twilio reports a final status.
    call_poll_interval_seconds: float = 5.0

    # How long a case's next workflow task waits for the worker that ran its last one (which
    # holds the case in its cache) before any worker may take it. A worker that died leaves its
    # cases this long before another replays them: the SDK's default, 10 s.
    worker_sticky_timeout_seconds: float = 10.0

    # Cases the worker keeps in memory (the SDK's workflow cache); the others are evicted and
    # replayed from their history when they next wake up (a reminder, an answer, a query).
    # A cached case costs about 0.35 MB: 200 (not the SDK's 1000) keeps a worker holding 10,000
    # parked cases under 300 MB; raise it where more cases than that are in outreach at once
    # (300 moving at once on a 200 cache: each woke to a replay, 358 ms of CPU per case
    # against 218 ms with 1000; `python -m bench.throughput --cache 200`).
    # 0: none cached, every workflow task replays. `python -m bench.held_cases` measures it.
    worker_max_cached_workflows: int = Field(default=200, ge=0)

    # Workflow tasks the worker runs at once (WORKER_MAX_CONCURRENT_WORKFLOW_TASKS). They share
    # one Python interpreter: at the SDK's 100, a saturated worker (300 cases at once on 2 cores)
    # ran hundreds of tasks past 5 s each and on PostgreSQL dozens past the server's 10 s task
    # timeout, which retried them and turned answers away meanwhile; at 10 none passed 5 s on
    # PostgreSQL, a handful on SQLite, at the same cases per second (`python -m
    # bench.throughput`). Activities keep the SDK's 100 slots.
    worker_max_concurrent_workflow_tasks: int = Field(default=10, ge=2)

    def message_link_base(self) -> str | None:
        """The base URL that messages' links start with, or None: messages carry no link."""
        if self.message_links == "never":
            return None
        if self.message_links == "auto" and _loopback(self.public_base_url):
            return None
        return self.public_base_url.rstrip("/")

    def public_webhook_base(self) -> str | None:
        """PUBLIC_BASE_URL when Twilio can reach it (not localhost, a loopback or an unspecified
        address): only then are calls placed with a status callback; otherwise polled."""
        base = self.public_base_url.strip().rstrip("/")
        if _loopback(base):
            return None
        return base


def _loopback(url: str) -> bool:
    """Not reachable from a phone or a provider: no host, localhost, 127.x, ::1, 0.0.0.0."""
    host = urlsplit(url).hostname or ""
    if not host or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ip_address(host)
    except ValueError:
        return False  # a host name
    return address.is_loopback or address.is_unspecified
