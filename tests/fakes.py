"""Recording fakes of the messaging providers for workflow tests: what was sent, to whom, when.

They implement the `providers.base` protocols. "When" is the Temporal server's clock as the
activity saw it, so time-skipping tests can assert times of day.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime

from temporalio import activity

from models.case import AttemptResult
from providers.base import (
    CallOutcome,
    PermanentDeliveryError,
    ProviderReceipt,
    Providers,
    TransientDeliveryError,
)


@dataclass
class Sent:
    channel: str
    to: str
    body: str
    at: datetime
    subject: str = ""


@dataclass
class RecordingProviders:
    """One shared, ordered log across channels, plus scripted failures."""

    sent: list[Sent] = field(default_factory=list)
    invalid_numbers: set[str] = field(default_factory=set)
    opted_out_numbers: set[str] = field(default_factory=set)  # replied STOP (Twilio 21610)
    broken_channels: set[str] = field(default_factory=set)  # raise a plain exception: a bug
    transient_failures: dict[str, int] = field(default_factory=dict)  # channel -> times to fail
    timeouts_after_send: dict[str, int] = field(default_factory=dict)  # sent, then no answer
    retry_after: float | None = None  # what a refusal says in Retry-After
    call_result: AttemptResult = AttemptResult.voicemail
    call_in_progress: bool = False  # every call rings until a status callback says otherwise
    outcome_polls: int = 0  # how often a call's outcome was asked of the provider
    tries: list[str] = field(default_factory=list)  # every provider call, failed ones included
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def bundle(self) -> Providers:
        return Providers(sms=_Sms(self), email=_Email(self), voice=_Voice(self))

    def to(self, address: str) -> list[Sent]:
        return [s for s in self.sent if s.to == address]

    def _attempt(self, channel: str, to: str) -> None:
        self.tries.append(f"{channel}:{to}")
        if channel in self.broken_channels:
            raise RuntimeError(f"a bug in the {channel} integration")
        if self.transient_failures.get(channel, 0) > 0:
            self.transient_failures[channel] -= 1
            error = TransientDeliveryError(f"{channel} provider answered 429")
            error.retry_after = self.retry_after  # type: ignore[attr-defined]
            raise error
        if channel != "email" and to in self.invalid_numbers:
            raise PermanentDeliveryError(
                AttemptResult.invalid_recipient, "21211 invalid 'To' number", 21211
            )
        if channel == "sms" and to in self.opted_out_numbers:
            raise PermanentDeliveryError(
                AttemptResult.opted_out, "Twilio error 21610: recipient opted out", 21610
            )

    def _record(self, channel: str, to: str, body: str, subject: str = "") -> ProviderReceipt:
        at = activity.info().current_attempt_scheduled_time
        self.sent.append(Sent(channel, to, body, at, subject))
        if self.timeouts_after_send.get(channel, 0) > 0:
            self.timeouts_after_send[channel] -= 1
            raise TransientDeliveryError("no answer from provider", may_have_been_sent=True)
        return ProviderReceipt(provider_id=f"{channel}-{next(self._ids)}", detail="queued")


class _Sms:
    def __init__(self, log: RecordingProviders) -> None:
        self._log = log

    async def send_sms(self, to: str, body: str) -> ProviderReceipt:
        self._log._attempt("sms", to)
        return self._log._record("sms", to, body)


class _Email:
    def __init__(self, log: RecordingProviders) -> None:
        self._log = log

    async def send_email(self, to: str, subject: str, body: str, key: str) -> ProviderReceipt:
        self._log._attempt("email", to)
        return self._log._record("email", to, body, subject)


class _Voice:
    def __init__(self, log: RecordingProviders) -> None:
        self._log = log

    async def start_call(self, to: str, spoken_message: str) -> ProviderReceipt:
        self._log._attempt("voice", to)
        return self._log._record("voice", to, spoken_message)

    async def call_outcome(self, call_id: str) -> CallOutcome | None:
        self._log.outcome_polls += 1
        if self._log.call_in_progress:
            return None
        return CallOutcome(result=self._log.call_result)
