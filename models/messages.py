"""The words that go out. Minimum necessary, always:

- a client hears their first name, the practice and a call-back number; the appointment is
  mentioned only by time, and "session"/the therapist only if they allowed detailed messages;
- an emergency contact never learns why the client is sought ("please ask X to contact their
  provider"), nor the words therapy, session or appointment;
- therapists and supervisors get the case id and session time, not the client's name
  (SMS and email are not a secure channel);
- no message ever asks anyone to reply with a carrier keyword such as STOP or CANCEL.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from models.case import Purpose
from models.directory import Channel


class PracticeInfo(BaseModel):
    name: str
    callback_number: str


class MessageFacts(BaseModel):
    """Everything a message may draw on. Built by the activity from the directory."""

    practice: PracticeInfo
    case_id: str
    client_first_name: str
    client_time_zone: str
    detailed_ok: bool
    therapist_name: str
    recipient_name: str
    scheduled_start: datetime
    waited: str = ""  # for supervisor escalation, e.g. "1d 2h"


class Message(BaseModel):
    subject: str
    body: str


def local_time(moment: datetime, time_zone: str) -> str:
    """'3:00 PM' in the given zone (the recipient's, or the practice's for staff)."""
    return moment.astimezone(ZoneInfo(time_zone)).strftime("%-I:%M %p")


def compose(purpose: Purpose, channel: Channel, facts: MessageFacts) -> Message:
    practice, callback = facts.practice.name, facts.practice.callback_number
    at = local_time(facts.scheduled_start, facts.client_time_zone)
    first = facts.client_first_name
    if purpose is Purpose.client_outreach:
        if facts.detailed_ok:
            what = f"your {at} session with {facts.therapist_name} today"
        else:
            what = f"your {at} appointment today"
        if channel is Channel.voice:
            body = (
                f"Hello, this is a message for {first} from {practice}. "
                + (f"We missed you at {what} and " if facts.detailed_ok else "We ")
                + "wanted to check in with you. Please call us back at "
                + f"{callback} when you can. Thank you, and take care."
            )
        else:
            body = (
                f"Hi {first}, this is {practice}. We missed you at {what} and want to "
                f"check in. Please call or text us at {callback} when you can."
            )
        return Message(subject=f"Checking in from {practice}", body=body)
    if purpose is Purpose.emergency_contact_check:
        body = (
            f"Hello {facts.recipient_name}, this is {practice}. We are trying to reach {first}. "
            f"If you can, please ask {first} to contact their provider at {callback}. Thank you."
        )
        return Message(subject=f"A message from {practice}", body=body)
    staff_at = facts.scheduled_start.strftime("%Y-%m-%d %H:%M %Z")
    if purpose is Purpose.therapist_confirmation:
        return Message(
            subject=f"Missed-session case {facts.case_id} needs your confirmation",
            body=(
                f"Missed-session case {facts.case_id} (session {staff_at}) has finished outreach "
                "and needs your confirmation: record the outcome, note, plan and fee decision."
            ),
        )
    if purpose is Purpose.therapist_reminder:
        return Message(
            subject=f"Reminder: case {facts.case_id} still needs your confirmation",
            body=f"Reminder: missed-session case {facts.case_id} (session {staff_at}) "
            "is still waiting for your confirmation.",
        )
    return Message(
        subject=f"Escalation: case {facts.case_id} unconfirmed for {facts.waited}",
        body=(
            f"Missed-session case {facts.case_id} (session {staff_at}) has waited {facts.waited} "
            f"for {facts.therapist_name} to confirm the client's status. Please follow up."
        ),
    )
