"""What the case store hands back for cases and outreach attempts (validated pydantic rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from models.case import Attempt, AttemptResult, CaseHeader, Purpose, RecipientRole, Stage
from models.directory import Channel

AttemptState = Literal["sending", "retry", "accepted", "done"]
"""sending: written just before the provider is called (a crash here hides whether it went out);
retry: the provider refused with 429/5xx, safe to send again; accepted: the provider took it
(a call may still be ringing); done: the result is final and never changes."""

AttendanceStatus = Literal["no_show", "attended_late", "attended", "late_cancelled"]


class CaseRow(CaseHeader):
    stage: Stage
    stage_since: datetime
    closed_at: datetime | None
    outcome: str | None


class AttemptRow(BaseModel):
    key: str
    case_id: str
    step: str
    channel: Channel
    recipient_role: RecipientRole
    purpose: Purpose
    round: int | None
    state: AttemptState
    claim: str | None = None
    provider_id: str | None
    result: AttemptResult | None
    detail: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None

    def as_attempt(self) -> Attempt:
        """The timeline entry of a finished attempt (`at` is when its result was recorded)."""
        if self.state != "done" or self.result is None or self.finished_at is None:
            raise ValueError(f"attempt {self.key} is not finished (state {self.state})")
        return Attempt(
            step=self.step,
            channel=self.channel,
            recipient_role=self.recipient_role,
            purpose=self.purpose,
            round=self.round,
            at=self.finished_at,
            result=self.result,
            detail=self.detail,
            provider_id=self.provider_id,
            dry_run=self.dry_run,
        )
