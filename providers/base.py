"""The contract between activities and messaging providers, and how provider errors are classified.

A provider raises `PermanentDeliveryError` when retrying cannot help (invalid number, recipient
opted out, unsubscribed) and `TransientDeliveryError` when it can (429, 5xx, timeouts, connection
errors). Activities record the first and move on; they let Temporal retry the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

from pydantic import BaseModel

from models.case import AttemptResult


class ProviderReceipt(BaseModel):
    provider_id: str | None = None  # Twilio SID / SendGrid X-Message-Id
    dry_run: bool = False
    detail: str = ""  # no PHI: never a full phone number, email or message body


class CallOutcome(BaseModel):
    result: AttemptResult  # answered, voicemail, no_answer, busy or failed
    detail: str = ""


class PermanentDeliveryError(Exception):
    def __init__(self, result: AttemptResult, detail: str, code: int | str | None = None) -> None:
        super().__init__(detail)
        self.result = result
        self.detail = detail
        self.code = code


class TransientDeliveryError(Exception):
    """Worth retrying later with backoff.

    `may_have_been_sent` is true when the request may have reached the provider (a timeout
    waiting for its answer): the retry then records the attempt `unconfirmed` instead of
    sending again, because a duplicate text to a client is worse than a missing one that the
    next channel covers.
    """

    def __init__(
        self, detail: str, may_have_been_sent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(detail)
        self.may_have_been_sent = may_have_been_sent
        self.retry_after = retry_after  # seconds, from the provider's Retry-After header


RETRY_AFTER_CAP_SECONDS = 3600.0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped at an hour;
    None when absent or unreadable (the retry policy's backoff applies then)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return 0.0 if seconds < 0 else None
    return min(seconds, RETRY_AFTER_CAP_SECONDS)


class SmsSender(Protocol):
    async def send_sms(self, to: str, body: str) -> ProviderReceipt: ...


class EmailSender(Protocol):
    async def send_email(self, to: str, subject: str, body: str, key: str) -> ProviderReceipt: ...


class VoiceCaller(Protocol):
    async def start_call(self, to: str, spoken_message: str) -> ProviderReceipt:
        """Place a call that speaks `spoken_message` (after the beep if a machine answers)."""
        ...

    async def call_outcome(self, call_id: str) -> CallOutcome | None:
        """The final outcome of a placed call, or None while it is still in progress."""
        ...


@dataclass(frozen=True)
class Providers:
    sms: SmsSender
    email: EmailSender
    voice: VoiceCaller

    async def aclose(self) -> None:
        """Release HTTP sessions the providers hold (those that have any)."""
        for provider in (self.sms, self.email, self.voice):
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()


def mask_address(address: str) -> str:
    """'***4567' / 'j***@example.org': enough for staff to tell addresses apart, no more."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return "***" + address[-4:]
