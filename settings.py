"""Configuration from the environment (and an optional `.env`), read once per process.

Temporal's own connection settings (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS, API key) are not
here: they come from Temporal's standard environment configuration (`temporalio.envconfig`).
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Literal
from urllib.parse import urlsplit

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    # Webhooks (`starter.py serve`): Twilio's are verified with TWILIO_AUTH_TOKEN against
    # PUBLIC_BASE_URL + path; SendGrid's signed event webhook with its verification key (the
    # base64 public key from Mail Settings), within a window of its signed timestamp.
    sendgrid_webhook_public_key: str | None = None
    sendgrid_webhook_max_age_seconds: int = 86400

    # The practice calendar sweep (a Temporal Schedule) and its default escalation policy.
    calendar_sweep_every_seconds: int = 60
    calendar_policy_file: str = "policies/default.toml"

    # How often a placed call is polled until Twilio reports a final status.
    call_poll_interval_seconds: float = 5.0

    def public_webhook_base(self) -> str | None:
        """PUBLIC_BASE_URL when Twilio can reach it (not localhost or a loopback address): only
        then are calls placed with a status callback; otherwise their outcome is polled."""
        base = self.public_base_url.strip().rstrip("/")
        host = urlsplit(base).hostname or ""
        if not host or host == "localhost" or host.endswith(".localhost"):
            return None
        try:
            if ip_address(host).is_loopback or ip_address(host).is_unspecified:
                return None
        except ValueError:
            pass  # a host name
        return base
