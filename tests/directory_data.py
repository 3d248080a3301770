"""A small fictitious directory for tests (all numbers in the 555 range, example.org emails)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from models.answers import CaseOutcome
from models.case import (
    AttendanceReview,
    FeeAssessment,
    NoteEntry,
    Purpose,
    RecipientRole,
    Resolution,
    case_id_for,
)
from models.directory import (
    Channel,
    ChannelConsent,
    ClientProfile,
    EmergencyContact,
    RiskLevel,
    Therapist,
)
from models.outreach import OutreachRequest

ALL = ChannelConsent(voice=True, sms=True, email=True)

THERAPIST = Therapist(
    therapist_id="T1",
    name="Dr. Maya Lin",
    email="maya.lin@example.org",
    phone="+15555550001",
    supervisor_id="S1",
)
SUPERVISOR = Therapist(
    therapist_id="S1", name="Dr. Sam Ortiz", email="sam.ortiz@example.org", phone="+15555550002"
)
CONTACT = EmergencyContact(
    name="Jordan Rivera",
    relationship="partner",
    phone="+15555550201",
    email="jordan@example.org",
    consent_to_contact=True,
)


def client(client_id: str = "C1", **changes: object) -> ClientProfile:
    base = ClientProfile(
        client_id=client_id,
        first_name="Alex",
        last_name="Kim",
        phone="+15555550101",
        email="alex@example.org",
        time_zone="America/New_York",
        consent=ALL,
        risk=RiskLevel.standard,
        therapist_id="T1",
        emergency_contact=CONTACT,
    )
    return base.model_copy(update=changes)


CLIENTS = [
    client("C1"),
    client("C2", emergency_contact=CONTACT.model_copy(update={"consent_to_contact": False})),
    client("C3", emergency_contact=None, payer_allows_no_show_fee=False),
    client("C4", phone="+15555550199"),  # the fake provider rejects this number (Twilio 21211)
    client("C5", risk=RiskLevel.high),
]
THERAPISTS = [THERAPIST, SUPERVISOR]


SESSION_START = datetime(2026, 11, 23, 15, 0, tzinfo=ZoneInfo("America/New_York"))


def outreach_request(
    step: str = "client/1/sms", channel: Channel = Channel.sms, appointment_id: str = "A1"
) -> OutreachRequest:
    """A round-1 message to client C1 of therapist T1, as the workflow would ask for it."""
    return OutreachRequest(
        case_id=case_id_for(appointment_id),
        appointment_id=appointment_id,
        step=step,
        channel=channel,
        recipient_role=RecipientRole.client,
        purpose=Purpose.client_outreach,
        round=1,
        client_id="C1",
        therapist_id="T1",
        scheduled_start=SESSION_START,
    )


def resolution(
    case_id: str, scheduled_start: datetime, closed_at: datetime, **changes: Any
) -> Resolution:
    """A documented resolution of appointment A1 (client C1, therapist T1), as the store keeps
    it; `changes` override any field."""
    fields: dict[str, Any] = {
        "case_id": case_id,
        "appointment_id": "A1",
        "client_id": "C1",
        "therapist_id": "T1",
        "scheduled_start": scheduled_start,
        "policy_name": "standard",
        "opened_at": scheduled_start,
        "closed_at": closed_at,
        "outcome": CaseOutcome.rescheduled,
        "closed_by": "T1",
        "note": "Reached; rescheduled to Friday.",
        "follow_up_plan": "Discuss attendance next session.",
        "fee": FeeAssessment(
            policy_fee_cents=7500,
            currency="USD",
            payer_allows_fee=True,
            therapist_decision=None,
            reason="waived: first miss",
            charged_cents=0,
        ),
        "attendance": AttendanceReview(
            window_days=90, misses_in_window=2, threshold=2, missed_session_starts=[scheduled_start]
        ),
        "attendance_flagged": True,
        "attempts": [],
        "notes": [NoteEntry(at=scheduled_start, author="desk", text="left a message")],
        "rejected_signals": [],
        "emergency_contact_note": None,
        "dry_run": False,
    }
    return Resolution(**{**fields, **changes})
