"""What people tell a running case, as Workflow Updates: the therapist's close-out, the client's
response or arrival, an acknowledgement, a note.

These models are stored in history, so they decode leniently (unknown keys ignored, no length
limits). Every limit runs at the edge: the case service and the workflow's Update validators
call `models.edge.at_edge`, which rejects bad input before anything enters history.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from models.edge import checked_id, checked_text, is_edge


class CaseOutcome(StrEnum):
    reached_safe = "reached_safe"
    rescheduled = "rescheduled"
    referred_to_crisis_services = "referred_to_crisis_services"
    emergency_services_contacted = "emergency_services_contacted"
    unable_to_reach = "unable_to_reach"
    other = "other"
    attended_late = "attended_late"  # only from `client_arrived` during the grace wait
    cancelled_by_operator = "cancelled_by_operator"  # "Request Cancellation" in the Web UI
    terminated = "terminated"  # ended by hand with no code run: marked by reconciliation only


CLOSE_OUT_OUTCOMES = [
    CaseOutcome.reached_safe,
    CaseOutcome.rescheduled,
    CaseOutcome.referred_to_crisis_services,
    CaseOutcome.emergency_services_contacted,
    CaseOutcome.unable_to_reach,
    CaseOutcome.other,
]
"""What a therapist may report; the others are recorded by the case itself."""


class FeeChoice(StrEnum):
    charge = "charge"
    waive = "waive"


Note = Annotated[str, AfterValidator(checked_text(5000, multiline=True))]
ShortText = Annotated[str, AfterValidator(checked_text(200))]
PersonId = Annotated[str, AfterValidator(checked_id)]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class FeeDecision(_Answer):
    decision: FeeChoice
    reason: ShortText = ""

    @model_validator(mode="after")
    def _waiver_needs_reason(self, info: ValidationInfo) -> FeeDecision:
        if is_edge(info) and self.decision is FeeChoice.waive and not self.reason:
            raise ValueError("a fee waiver needs a reason")
        return self


class ClientArrived(_Answer):
    """The client turned up (front desk, telehealth check-in)."""

    note: Note = ""


class ClientIntent(StrEnum):
    """What the client chose on their page (or said): the therapist sees it in the case."""

    ok = "ok"
    reschedule = "reschedule"
    call_me = "call_me"


INTENT_LABELS = {
    ClientIntent.ok: "I'm OK",
    ClientIntent.reschedule: "I'd like to reschedule",
    ClientIntent.call_me: "Please call me",
}
"""The words of the client's three choices, as the client saw them."""


class ClientResponded(_Answer):
    """The client called, texted or emailed back: outreach and emergency escalation stop."""

    via: ShortText = Field(default="phone", min_length=1, description="phone, sms, email, ...")
    note: Note = ""
    intent: ClientIntent | None = Field(
        default=None, description="ok, reschedule or call_me (the client's page); optional"
    )


class Acknowledged(_Answer):
    """The therapist says "I'm on it": reminders pause for the policy's acknowledgement pause."""

    by: PersonId = Field(default="therapist", min_length=1)
    note: Note = ""


class AddNote(_Answer):
    author: ShortText = Field(min_length=1)
    text: Note = Field(min_length=1)


class ClientReached(_Answer):
    """The therapist's close-out: ends the case at any stage with its documented resolution."""

    outcome: CaseOutcome
    note: Note = Field(min_length=1)
    follow_up_plan: Note = Field(min_length=1)
    fee: FeeDecision
    by: PersonId = Field(default="therapist", min_length=1)
    materials: Note = Field(
        default="",
        description="Between-session materials for the client (optional): shown on the "
        "client's own page once the case is closed. Nothing clinical the client should not see.",
    )

    @field_validator("outcome", mode="before")
    @classmethod
    def _reported_outcome(cls, value: object, info: ValidationInfo) -> object:
        if is_edge(info) and value not in CLOSE_OUT_OUTCOMES:
            allowed = ", ".join(o.value for o in CLOSE_OUT_OUTCOMES)
            raise ValueError(f"outcome must be one of {allowed}")
        return value


def _plausible_date(value: datetime, info: ValidationInfo) -> datetime:
    """At the edge, a date whose local time can always be shown (no overflow near year 9999)."""
    if is_edge(info) and not 2000 <= value.year <= 2200:
        raise ValueError("must be a date between the years 2000 and 2200")
    return value


class SessionCancelled(_Answer):
    """The calendar says the session was cancelled, or moved to another time, after the case
    opened: outreach stops, the case is documented, the therapist still closes it."""

    moved_to: Annotated[AwareDatetime, AfterValidator(_plausible_date)] | None = None
    by: PersonId = Field(default="calendar", min_length=1)
    note: Note = ""


class AnswerReceipt(BaseModel):
    """What the caller of an Update is told when the case accepted the answer."""

    case_id: str
    accepted: str  # what happens next, in the product's words
