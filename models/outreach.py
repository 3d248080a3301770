"""Inputs and outputs of the activities: what the workflow asks for, never contact details.

The workflow names a recipient by role and the case's ids; the activity looks the address up
in the directory. Phone numbers and emails therefore never enter Temporal's history.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from models.answers import ClientIntent
from models.case import CaseHeader, NoteEntry, Purpose, RecipientRole, StaffSituation, Stage
from models.directory import Channel
from models.policy import QuietHours


class OutreachRequest(BaseModel):
    case_id: str
    appointment_id: str
    step: str  # stable within the case, e.g. "client/2/sms"; never the activity attempt number
    channel: Channel
    recipient_role: RecipientRole
    purpose: Purpose
    round: int | None = None
    client_id: str
    therapist_id: str
    scheduled_start: datetime
    waited: timedelta | None = (
        None  # supervisor escalation: how long the therapist has not answered
    )
    situation: StaffSituation | None = None  # staff messages: what happened so far
    client_intent: ClientIntent | None = None  # staff messages: the client's choice, if any
    give_up_after: timedelta = timedelta(minutes=5)  # provider errors this long: recorded failed

    @property
    def key(self) -> str:
        """The idempotency key of this message: case + step."""
        return f"{self.case_id}/{self.step}"


class OutreachBatch(BaseModel):
    """The messages of one step to one recipient (a round's channels, a notice by email and
    text), sent side by side by one activity. Each keeps its own key, claim and attempt row:
    batching changes how many activities a case runs, not what is sent or recorded."""

    messages: list[OutreachRequest]


class OpenCaseRequest(CaseHeader):
    """Record a new case (in `grace_wait`)."""


class StageChange(BaseModel):
    case_id: str
    stage: Stage
    at: datetime


class NoteRecord(BaseModel):
    case_id: str
    key: str  # e.g. "<case>/note/3"
    entry: NoteEntry


class AttendanceQuery(BaseModel):
    case_id: str
    client_id: str
    appointment_id: str
    scheduled_start: datetime
    window_days: int
    threshold: int
    attended: bool
    # The calendar cancelled or moved the session after its case opened (after its start, so
    # inside any late-cancellation window): a late cancellation, not a no-show.
    session_cancelled: bool = False


class SendTimeQuery(BaseModel):
    """When may a call or text go out? Answered by a local activity, so the decision is
    recorded in history and a replay on a worker with a newer time-zone database agrees."""

    now: datetime
    time_zone: str
    quiet: QuietHours
