"""The case: its input, the non-PHI context the workflow decides on, its live state and result."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, ValidationInfo

from models.answers import CaseOutcome, ClientIntent, FeeChoice
from models.directory import Channel, ClientProfile, RiskLevel, Therapist
from models.edge import checked_id, checked_text, is_edge
from models.policy import EscalationPolicy


class Stage(StrEnum):
    grace_wait = "grace_wait"
    contacting_client = "contacting_client"
    contacting_emergency_contact = "contacting_emergency_contact"
    awaiting_therapist = "awaiting_therapist"
    closed = "closed"


class EscalationLevel:
    """How far a case has escalated (search attribute `EscalationLevel`, an Int for sorting)."""

    none = 0
    client_outreach = 1
    emergency_contact = 2
    therapist = 3
    supervisor = 4


class RecipientRole(StrEnum):
    client = "client"
    emergency_contact = "emergency_contact"
    therapist = "therapist"
    supervisor = "supervisor"
    on_call = "on_call"  # the practice's on-call address, when the therapist has no supervisor


class Purpose(StrEnum):
    """Why a message goes out; decides its wording (see `models.messages`)."""

    client_outreach = "client_outreach"
    emergency_contact_check = "emergency_contact_check"
    therapist_confirmation = "therapist_confirmation"
    therapist_reminder = "therapist_reminder"
    supervisor_escalation = "supervisor_escalation"
    therapist_outreach_started = "therapist_outreach_started"  # high risk: told at the start
    supervisor_reminder = "supervisor_reminder"  # re-notified while the case stays open
    client_texted = "client_texted"  # a client with no open case texted the practice


class StaffSituation(StrEnum):
    """What a staff message reports (no PHI): the case's situation when it was sent."""

    outreach_started = "outreach_started"
    client_responded = "client_responded"
    nobody_reached = "nobody_reached"
    session_cancelled = "session_cancelled"  # cancelled or moved in the calendar after opening


class AttemptResult(StrEnum):
    sent = "sent"  # accepted by the provider (SMS, email)
    answered = "answered"  # a person picked up and heard the message
    voicemail = "voicemail"  # the message was left after the beep
    no_answer = "no_answer"
    busy = "busy"
    failed = "failed"  # provider error after retries, or an undeliverable call
    invalid_recipient = "invalid_recipient"  # not a valid / not a mobile number, bad email
    opted_out = "opted_out"  # replied STOP / unsubscribed
    unconfirmed = "unconfirmed"  # a crash hid whether it went out; never resent (no duplicates)
    dry_run = "dry_run"  # no provider credentials: recorded, nothing sent


def case_id_for(appointment_id: str) -> str:
    """The workflow id: opaque, built only from the appointment id (no PHI)."""
    return f"missed-session-{appointment_id}"


def _plausible_start(value: datetime, info: ValidationInfo) -> datetime:
    """At the edge, a start far enough from the calendar's ends that waits cannot overflow
    (the trigger window relative to now is checked by the case service)."""
    if is_edge(info) and not 2000 <= value.year <= 2200:
        raise ValueError("must be a date between the years 2000 and 2200")
    return value


class MissedSessionInput(BaseModel):
    """The workflow's input. Decoded leniently on replay; `models.edge.at_edge` checks it where
    a case is opened (the case service)."""

    appointment_id: Annotated[str, AfterValidator(checked_id)] = Field(min_length=1)
    client_id: Annotated[str, AfterValidator(checked_id)] = Field(min_length=1)
    therapist_id: Annotated[str, AfterValidator(checked_id)] = Field(min_length=1)
    scheduled_start: Annotated[AwareDatetime, AfterValidator(_plausible_start)]
    policy: EscalationPolicy
    carried: CarriedState | None = Field(
        default=None, description="Set only by continue-as-new: the case so far."
    )

    @property
    def case_id(self) -> str:
        return case_id_for(self.appointment_id)


class RecipientReach(BaseModel):
    """What the workflow may know of a recipient: channels it may use, and their time zone."""

    channels: list[Channel]
    time_zone: str


class CaseContext(BaseModel):
    """Decision facts read from the directory when the case opens. No names, numbers or emails."""

    client: RecipientReach
    client_risk: RiskLevel
    payer_allows_no_show_fee: bool
    emergency_contact: RecipientReach | None
    emergency_contact_skip_reason: str | None = None
    therapist: RecipientReach
    supervisor: RecipientReach | None
    on_call: RecipientReach | None = None

    @classmethod
    def from_directory(
        cls,
        client: ClientProfile,
        therapist: Therapist,
        supervisor: Therapist | None,
        practice_time_zone: str,
        on_call_channels: list[Channel] | None = None,
    ) -> CaseContext:
        """Reduce directory records to the facts the procedure decides on, and why a step
        will be skipped (e.g. no consent to contact the emergency contact)."""
        contact = client.emergency_contact
        contact_reach: RecipientReach | None = None
        skip_reason: str | None = None
        if contact is None:
            skip_reason = "no emergency contact on file"
        elif not contact.consent_to_contact:
            skip_reason = "no recorded consent to contact the emergency contact"
        elif not contact.reachable_channels():
            skip_reason = "the emergency contact has no phone number or email on file"
        else:
            contact_reach = RecipientReach(
                channels=contact.reachable_channels(), time_zone=client.time_zone
            )
        return cls(
            client=RecipientReach(channels=client.reachable_channels(), time_zone=client.time_zone),
            client_risk=client.risk,
            payer_allows_no_show_fee=client.payer_allows_no_show_fee,
            emergency_contact=contact_reach,
            emergency_contact_skip_reason=skip_reason,
            therapist=RecipientReach(
                channels=therapist.reachable_channels(), time_zone=practice_time_zone
            ),
            supervisor=(
                RecipientReach(
                    channels=supervisor.reachable_channels(), time_zone=practice_time_zone
                )
                if supervisor
                else None
            ),
            on_call=(
                RecipientReach(channels=on_call_channels, time_zone=practice_time_zone)
                if on_call_channels
                else None
            ),
        )


class Attempt(BaseModel):
    """One outreach attempt, as recorded in the case store when it happened."""

    step: str
    channel: Channel
    recipient_role: RecipientRole
    purpose: Purpose
    round: int | None = None
    at: datetime
    result: AttemptResult
    detail: str = ""
    provider_id: str | None = None
    dry_run: bool = False


class NoteEntry(BaseModel):
    at: datetime
    author: str
    text: str


NoteText = Annotated[str, AfterValidator(checked_text(5000, multiline=True))]


class RejectedSignal(BaseModel):
    at: datetime
    signal: str
    error: str


class NextAction(BaseModel):
    description: str
    at: datetime | None = None


class Closing(BaseModel):
    """How the case is being closed: who closed it, when, with what outcome."""

    outcome: CaseOutcome
    by: str
    at: datetime


class CaseStatus(BaseModel):
    """What the `case_status` query returns and the current-details text is rendered from."""

    case_id: str
    appointment_id: str
    stage: Stage
    stage_since: datetime
    escalation_level: int = EscalationLevel.none
    closing: Closing | None = None
    unusable: list[str] = Field(
        default=[],
        description='Addresses learnt to be unusable in this case, as "<role>/<phone|email>".',
    )
    attempts: list[Attempt] = []
    notes: list[NoteEntry] = []
    rejected_signals: list[RejectedSignal] = []
    next_action: NextAction | None = None
    deferred: list[NextAction] = Field(
        default=[], description="Messages waiting out the recipient's quiet hours."
    )
    client_responded: bool = False
    emergency_contact_note: str | None = None
    acknowledged_until: datetime | None = None
    therapist_reminders_sent: int = 0
    supervisor_notified: bool = False
    supervisor_reminders_sent: int = 0
    therapist_told_at_start: bool = False
    session_cancelled_at: datetime | None = Field(
        default=None, description="When the calendar said the session was cancelled or moved."
    )
    session_moved_to: datetime | None = None
    therapist_asked_at: datetime | None = Field(
        default=None, description="When the therapist was asked to confirm the client's status."
    )
    client_intent: ClientIntent | None = Field(
        default=None, description="The client's last choice on their page (ok, reschedule, ...)."
    )
    attendance_window_days: int | None = Field(
        default=None, description="The policy's review window (the close-out page's chart)."
    )


class TherapistWait(BaseModel):
    """Deadlines of the wait for the therapist, carried across continue-as-new."""

    started: datetime
    next_reminder: datetime
    supervisor_due: datetime
    next_renotify: datetime | None = None


class CarriedState(BaseModel):
    """Everything a case needs to go on in a new run after continue-as-new (history stays small
    however long the therapist takes)."""

    opened_at: datetime
    status: CaseStatus
    context: CaseContext
    notes_recorded: int
    wait: TherapistWait
    runs: int = 1


class AttendanceReview(BaseModel):
    window_days: int
    misses_in_window: int
    threshold: int
    missed_session_starts: list[datetime] = []
    late_cancellations_in_window: int = Field(
        default=0, description="Sessions cancelled inside the late-cancellation window (fees)."
    )

    @property
    def flagged(self) -> bool:
        return self.misses_in_window >= self.threshold


class FeeAssessment(BaseModel):
    policy_fee_cents: int
    currency: str
    payer_allows_fee: bool
    therapist_decision: FeeChoice | None
    reason: str
    charged_cents: int


class CaseHeader(BaseModel):
    """What every record of a case starts with: who, which session, under which policy."""

    case_id: str
    appointment_id: str
    client_id: str
    therapist_id: str
    scheduled_start: datetime
    policy_name: str
    opened_at: datetime


class Resolution(CaseHeader):
    """The documented resolution: the workflow's result, kept in the case store past retention."""

    closed_at: datetime
    outcome: CaseOutcome
    closed_by: str
    note: str
    follow_up_plan: str
    fee: FeeAssessment
    attendance: AttendanceReview
    attendance_flagged: bool
    attempts: list[Attempt]
    notes: list[NoteEntry]
    rejected_signals: list[RejectedSignal]
    emergency_contact_note: str | None
    addenda: list[NoteEntry] = Field(
        default=[], description="Dated documentation added after the case closed."
    )
    dry_run: bool = Field(description="True if any attempt was a dry run (nothing really sent).")
    client_intent: ClientIntent | None = Field(
        default=None, description="The client's last choice on their page, if they made one."
    )
    client_materials: str = Field(
        default="", description="Between-session materials the close-out gave the client."
    )


MissedSessionInput.model_rebuild()  # `carried` refers to models defined below it
