"""What people tell a running case. The CLI (and later the web) validates with these same models
before signalling; the workflow validates again and records a malformed payload as rejected."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


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


class FeeChoice(StrEnum):
    charge = "charge"
    waive = "waive"


class _Signal(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FeeDecision(_Signal):
    decision: FeeChoice
    reason: str = ""

    @model_validator(mode="after")
    def _waiver_needs_reason(self) -> FeeDecision:
        if self.decision is FeeChoice.waive and not self.reason:
            raise ValueError("a fee waiver needs a reason")
        return self


class ClientArrived(_Signal):
    """The client turned up (front desk, telehealth check-in)."""

    note: str = ""


class ClientResponded(_Signal):
    """The client called, texted or emailed back: outreach and emergency escalation stop."""

    via: str = Field(default="phone", min_length=1, description="phone, sms, email, in person...")
    note: str = ""


class Acknowledged(_Signal):
    """The therapist says "I'm on it": reminders pause for the policy's acknowledgement pause."""

    by: str = Field(default="therapist", min_length=1)
    note: str = ""


class AddNote(_Signal):
    author: str = Field(min_length=1)
    text: str = Field(min_length=1)


class ClientReached(_Signal):
    """The therapist's close-out: the only signal that resolves a case after the grace wait."""

    outcome: CaseOutcome
    note: str = Field(min_length=1)
    follow_up_plan: str = Field(min_length=1)
    fee: FeeDecision
    by: str = Field(default="therapist", min_length=1)

    @model_validator(mode="after")
    def _not_attended_late(self) -> ClientReached:
        if self.outcome is CaseOutcome.attended_late:
            raise ValueError("attended_late is recorded by client_arrived during the grace wait")
        return self
