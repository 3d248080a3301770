"""The escalation policy: every wait, channel and threshold of the procedure, as data.

A practice edits a TOML file (see `policies/`); the starter loads it and passes it to the
workflow in its input, so a case keeps the policy it was opened under even if the file changes.
"""

from __future__ import annotations

import tomllib
from datetime import time, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.directory import Channel, RiskLevel
from models.durations import Duration

PRODUCTION_GRACE_MIN = timedelta(minutes=15)
PRODUCTION_GRACE_MAX = timedelta(minutes=30)


class QuietHours(BaseModel):
    """No calls or texts between `start` and `end` in the recipient's local time (TCPA practice)."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    start: time = time(21, 0)
    end: time = time(8, 0)


class OutreachRound(BaseModel):
    """One round of reaching out: these channels in order, then wait for the client to respond."""

    channels: list[Channel] = Field(min_length=1)
    then_wait: Duration


class EscalationPolicy(BaseModel):
    name: str = Field(min_length=1)
    demo: bool = Field(
        default=False,
        description="A demo/test policy may use waits of seconds; never use one for real clients.",
    )
    grace: Duration = timedelta(minutes=20)
    rounds: list[OutreachRound] = Field(min_length=1)
    client_rounds_before_emergency_contact: dict[RiskLevel, int] = Field(
        default_factory=lambda: {RiskLevel.standard: 3, RiskLevel.elevated: 2, RiskLevel.high: 1},
        description="Client outreach rounds before the emergency contact; fewer for higher risk.",
    )
    emergency_contact_channels: list[Channel] = Field(
        default_factory=lambda: [Channel.voice, Channel.sms, Channel.email]
    )
    emergency_contact_wait: Duration = timedelta(hours=1)
    quiet_hours: QuietHours = QuietHours()
    therapist_channels: list[Channel] = Field(
        default_factory=lambda: [Channel.email, Channel.sms], min_length=1
    )
    therapist_reminder_every: Duration = timedelta(hours=4)
    therapist_max_reminders: int = Field(default=6, ge=0)
    supervisor_after: Duration = timedelta(hours=24)
    acknowledgement_pause: Duration = timedelta(hours=8)
    supervisor_renotify_every: Duration = Field(
        default=timedelta(hours=24),
        description="Once reminders run out, the supervisor (or on-call) is told again this often.",
    )
    notify_therapist_at_start: list[RiskLevel] = Field(
        default_factory=lambda: [RiskLevel.high],
        description="Risk levels whose therapist is told when outreach starts, not only after.",
    )
    message_retry_for: Duration = Field(
        default=timedelta(minutes=5),
        description="How long a message is retried on provider errors before it is recorded "
        "failed (or unconfirmed) and outreach moves on.",
    )
    trigger_window_days: int = Field(
        default=7,
        ge=1,
        description="A case opens only for a session within this many days of now.",
    )
    no_show_fee_cents: int = Field(default=0, ge=0)
    currency: str = "USD"
    attendance_window_days: int = Field(default=90, ge=1)
    attendance_flag_threshold: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _production_limits(self) -> EscalationPolicy:
        if not self.demo and not PRODUCTION_GRACE_MIN <= self.grace <= PRODUCTION_GRACE_MAX:
            raise ValueError(
                f"grace must be between 15 and 30 minutes (got {self.grace}); "
                "only a policy marked demo = true may use other values"
            )
        for risk in RiskLevel:
            rounds = self.client_rounds_before_emergency_contact.get(risk)
            if rounds is None or not 1 <= rounds <= len(self.rounds):
                raise ValueError(
                    f"client_rounds_before_emergency_contact.{risk.value} must be between 1 and "
                    f"the number of rounds ({len(self.rounds)})"
                )
        return self

    def client_rounds(self, risk: RiskLevel) -> list[OutreachRound]:
        """The rounds a client of this risk level gets before the emergency contact is tried."""
        return self.rounds[: self.client_rounds_before_emergency_contact[risk]]


def load_policy(path: str | Path) -> EscalationPolicy:
    """Read and validate a policy TOML file; errors name the file and the offending field."""
    path = Path(path)
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    try:
        return EscalationPolicy.model_validate(data)
    except ValueError as exc:
        raise ValueError(f"invalid escalation policy {path}: {exc}") from exc
