"""The escalation policy: every wait, channel and threshold of the procedure, as data.

A practice edits a TOML file (see `policies/`); the starter loads it and passes it to the
workflow in its input, so a case keeps the policy it was opened under even if the file changes.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from models.directory import Channel, RiskLevel
from models.durations import Duration
from models.edge import EdgeError, at_edge, is_edge

PRODUCTION_GRACE_MIN = timedelta(minutes=15)
PRODUCTION_GRACE_MAX = timedelta(minutes=30)
LONGEST_WAIT = timedelta(days=30)
_CURRENCY = re.compile(r"^[A-Z]{3}\Z")


class PolicyError(ValueError):
    """A policy rejected where it is loaded: one line naming every bad field."""


class _PolicyPart(BaseModel):
    """Lenient when decoded from history (unknown keys ignored); at the edge a misspelt key is
    an error, because a silently ignored `therapist_reminder_evry` is a policy nobody wrote."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_keys(cls, data: Any, info: ValidationInfo) -> Any:
        if is_edge(info) and isinstance(data, Mapping):
            unknown = sorted(str(k) for k in data if k not in cls.model_fields)
            if unknown:
                raise ValueError(f"unknown key {', '.join(unknown)}")
        return data


class QuietHours(_PolicyPart):
    """No calls or texts between `start` and `end` in the recipient's local time (TCPA practice)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    enabled: bool = True
    start: time = time(21, 0)
    end: time = time(8, 0)


class OutreachRound(_PolicyPart):
    """One round of reaching out: these channels side by side, then wait for the client."""

    channels: list[Channel]
    then_wait: Duration


class EscalationPolicy(_PolicyPart):
    """Decoded leniently (a case's input is replayed by later code); `validate_policy` and
    `load_policy` enforce every limit where a policy enters."""

    name: str
    demo: bool = Field(
        default=False,
        description="A demo/test policy may use waits of seconds; never use one for real clients.",
    )
    grace: Duration = timedelta(minutes=20)
    rounds: list[OutreachRound]
    client_rounds_before_emergency_contact: dict[RiskLevel, int] = Field(
        default_factory=lambda: {RiskLevel.standard: 3, RiskLevel.elevated: 2, RiskLevel.high: 1},
        description="Client outreach rounds before the emergency contact; fewer for higher risk.",
    )
    emergency_contact_channels: list[Channel] = Field(
        default_factory=lambda: [Channel.voice, Channel.sms, Channel.email]
    )
    emergency_contact_wait: Duration = timedelta(hours=1)
    quiet_hours: QuietHours = QuietHours()
    therapist_channels: list[Channel] = Field(default_factory=lambda: [Channel.email, Channel.sms])
    therapist_reminder_channels: list[Channel] | None = Field(
        default=None,
        description="Channels of the reminders (None: `therapist_channels`). The first notice "
        "and the supervisor's go by every therapist channel.",
    )
    therapist_reminder_every: Duration = timedelta(hours=4)
    therapist_max_reminders: int = 6
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
        default=7, description="A case opens only for a session within this many days of now."
    )
    late_cancellation_window: Duration = Field(
        default=timedelta(hours=24),
        description="A session cancelled less than this before its start is recorded as a late "
        "cancellation for the fee decision (no outreach).",
    )
    calendar_catch_up: Duration = Field(
        default=timedelta(days=2),
        description="How long after its start a missed calendar session still opens a case "
        "(after the sweep was down).",
    )
    no_show_fee_cents: int = 0
    currency: str = "USD"
    attendance_window_days: int = 90
    attendance_flag_threshold: int = 2

    @model_validator(mode="after")
    def _limits(self, info: ValidationInfo) -> EscalationPolicy:
        if is_edge(info):
            problems = policy_problems(self)
            if problems:
                raise ValueError("; ".join(problems))
        return self

    def client_rounds(self, risk: RiskLevel) -> list[OutreachRound]:
        """The rounds a client of this risk level gets before the emergency contact is tried."""
        return self.rounds[: self.client_rounds_before_emergency_contact[risk]]


def policy_problems(policy: EscalationPolicy) -> list[str]:
    """Every limit a policy breaks, as "field: problem" (empty when it is fine)."""
    problems: list[str] = []

    def check(field: str, ok: bool, message: str) -> None:
        if not ok:
            problems.append(f"{field}: {message}")

    check("name", 1 <= len(policy.name) <= 100, "1 to 100 characters")
    check("name", policy.name.isprintable(), "must not contain control characters")
    waits = {
        "grace": policy.grace,
        "emergency_contact_wait": policy.emergency_contact_wait,
        "therapist_reminder_every": policy.therapist_reminder_every,
        "supervisor_after": policy.supervisor_after,
        "acknowledgement_pause": policy.acknowledgement_pause,
        "supervisor_renotify_every": policy.supervisor_renotify_every,
        "message_retry_for": policy.message_retry_for,
        "late_cancellation_window": policy.late_cancellation_window,
        "calendar_catch_up": policy.calendar_catch_up,
        **{f"rounds.{n}.then_wait": r.then_wait for n, r in enumerate(policy.rounds)},
    }
    for field, wait in waits.items():
        check(field, timedelta(0) < wait <= LONGEST_WAIT, "more than zero and at most 30 days")
    if policy.demo:
        check("grace", policy.grace <= PRODUCTION_GRACE_MAX, "at most 30 minutes")
    else:
        check(
            "grace",
            PRODUCTION_GRACE_MIN <= policy.grace <= PRODUCTION_GRACE_MAX,
            "must be between 15 and 30 minutes; only a policy marked demo = true may differ",
        )
        check(
            "supervisor_renotify_every",
            timedelta(hours=1) <= policy.supervisor_renotify_every <= timedelta(days=7),
            "between 1 hour and 7 days",
        )
        check(
            "message_retry_for",
            timedelta(seconds=30) <= policy.message_retry_for <= timedelta(hours=1),
            "between 30 seconds and 1 hour",
        )
    check("rounds", 1 <= len(policy.rounds) <= 10, "1 to 10 rounds")
    for n, outreach_round in enumerate(policy.rounds):
        channels = outreach_round.channels
        check(
            f"rounds.{n}.channels",
            1 <= len(channels) == len(set(channels)),
            "one to three channels, each once",
        )
    check(
        "emergency_contact_channels",
        len(policy.emergency_contact_channels) == len(set(policy.emergency_contact_channels)),
        "each channel once",
    )
    check(
        "therapist_channels",
        1 <= len(policy.therapist_channels) == len(set(policy.therapist_channels)),
        "one to three channels, each once",
    )
    reminders = policy.therapist_reminder_channels
    check(
        "therapist_reminder_channels",
        reminders is None or 1 <= len(reminders) == len(set(reminders)),
        "one to three channels, each once",
    )
    for risk in RiskLevel:
        rounds = policy.client_rounds_before_emergency_contact.get(risk)
        check(
            f"client_rounds_before_emergency_contact.{risk.value}",
            rounds is not None and 1 <= rounds <= len(policy.rounds),
            f"must be between 1 and the number of rounds ({len(policy.rounds)})",
        )
    for field, value, top in (
        ("therapist_max_reminders", policy.therapist_max_reminders, 50),
        ("no_show_fee_cents", policy.no_show_fee_cents, 1_000_000),
    ):
        check(field, 0 <= value <= top, f"between 0 and {top}")
    for field, value, top in (
        ("attendance_window_days", policy.attendance_window_days, 3650),
        ("attendance_flag_threshold", policy.attendance_flag_threshold, 100),
        ("trigger_window_days", policy.trigger_window_days, 366),
    ):
        check(field, 1 <= value <= top, f"between 1 and {top}")
    check("currency", bool(_CURRENCY.match(policy.currency)), "three capital letters, e.g. USD")
    return problems


def validate_policy(data: Mapping[str, Any], source: str = "policy") -> EscalationPolicy:
    """A policy from outside (a file, a form, code), with every limit checked."""
    try:
        return at_edge(EscalationPolicy, data)
    except EdgeError as exc:
        raise PolicyError(f"invalid escalation policy {source}: {exc}") from None


def load_policy(path: str | Path) -> EscalationPolicy:
    """Read and validate a policy TOML file; errors name the file and every offending field."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"invalid escalation policy {path}: not valid TOML: {exc}") from None
    return validate_policy(data, str(path))
