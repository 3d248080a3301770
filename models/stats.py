"""The figures an on-call engineer watches, from the case store: counts and ages, no PHI.

`starter.py stats` prints them; the worker publishes them as Prometheus gauges beside
Temporal's own runtime metrics (`temporal_env/metrics.py`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class MessageCount(BaseModel):
    channel: str  # voice | sms | email
    result: str  # models.case.AttemptResult, or "in_flight" while no result is final
    count: int


class CaseStats(BaseModel):
    at: datetime
    cases_opened: int = Field(description="Every case ever opened (the store's record).")
    cases_closed: dict[str, int] = Field(description="Closed cases by outcome.")
    cases_open: dict[str, int] = Field(description="Open cases by stage.")
    oldest_awaiting_therapist_seconds: float | None = Field(
        description="How long the longest-waiting case has waited for its therapist."
    )
    messages: list[MessageCount]
    unconfirmed_messages: int = Field(description="Messages a crash or timeout left unknown.")
    oldest_open_unconfirmed_seconds: float | None = Field(
        description="Age of the oldest open case with an unconfirmed message: someone should "
        "check with the provider's log whether it went out."
    )

    def failed_messages(self) -> int:
        return sum(m.count for m in self.messages if m.result in _FAILED)


_FAILED = frozenset({"failed", "invalid_recipient"})
