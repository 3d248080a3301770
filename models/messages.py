"""The words that go out. Minimum necessary, always:

- a client hears their first name, the practice and a call-back number, on every channel; the
  session, its time and the therapist only if they allowed detailed messages, and "today" only
  when it was today in their zone;
- an emergency contact never learns why the client is sought ("please ask X to contact their
  provider"), nor the words therapy, session or appointment;
- therapists and supervisors get the case id, the session time in the practice's zone and what
  happened, not the client's name (SMS and email are not a secure channel);
- no message ever asks anyone to reply with a carrier keyword such as STOP or CANCEL;
- a page link (`link`, signed for this recipient of this case: `models.links`) goes only in
  texts and emails to the client, the therapist and the supervisor: never in a voicemail (a
  link cannot be spoken, and a shared phone's listener would learn of it), never to the
  emergency contact. The pages behind it say no more than the message itself.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from models.answers import INTENT_LABELS, ClientIntent
from models.case import Purpose, StaffSituation
from models.directory import Channel


class PracticeInfo(BaseModel):
    name: str
    callback_number: str


class MessageFacts(BaseModel):
    """Everything a message may draw on. Built by the activity from the directory."""

    practice: PracticeInfo
    practice_time_zone: str
    case_id: str
    client_first_name: str
    client_time_zone: str
    detailed_ok: bool
    therapist_name: str
    recipient_name: str
    scheduled_start: datetime
    now: datetime  # when the message goes out: "today" only if the session was today
    waited: str = ""  # for supervisor messages, e.g. "1d 2h"
    situation: StaffSituation | None = None
    link: str = ""  # this recipient's page link, if messages carry links
    client_intent: ClientIntent | None = None  # staff: what the client chose on their page
    client_id: str = ""  # staff: the directory id (never the name)


class Message(BaseModel):
    subject: str
    body: str


def local_time(moment: datetime, time_zone: str) -> str:
    """'3:00 PM' in the given zone (the recipient's)."""
    return moment.astimezone(ZoneInfo(time_zone)).strftime("%-I:%M %p")


def staff_time(moment: datetime, time_zone: str) -> str:
    """'Mon Nov 23, 3:00 PM EST (America/New_York)': the practice's zone, named."""
    local = moment.astimezone(ZoneInfo(time_zone))
    return f"{local.strftime('%a %b %-d, %-I:%M %p %Z')} ({time_zone})"


def session_day(start: datetime, now: datetime, time_zone: str) -> str:
    """'today' only when the session was today in the client's zone, else its weekday and
    date ("on Monday, November 23")."""
    zone = ZoneInfo(time_zone)
    local = start.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return "today"
    return f"on {local.strftime('%A, %B %-d')}"


_SITUATION = {
    StaffSituation.outreach_started: "The client did not arrive; outreach has started.",
    StaffSituation.client_responded: "The client responded to outreach.",
    StaffSituation.session_cancelled: (
        "The session was cancelled or moved in the calendar after the case opened; "
        "outreach stopped."
    ),
    StaffSituation.nobody_reached: (
        "Nobody was reached: the client did not answer calls, texts or emails "
        "(the emergency contact was tried only with consent)."
    ),
}


def compose(purpose: Purpose, channel: Channel, facts: MessageFacts) -> Message:
    practice, callback = facts.practice.name, facts.practice.callback_number
    first = facts.client_first_name
    if purpose is Purpose.client_outreach:
        return _with_link(_client_outreach(channel, facts), channel, facts.link, _CLIENT_LINK)
    if purpose is Purpose.emergency_contact_check:
        body = (
            f"Hello {facts.recipient_name}, this is {practice}. We are trying to reach {first}. "
            f"If you can, please ask {first} to contact their provider at {callback}. Thank you."
        )
        return Message(subject=f"A message from {practice}", body=body)
    return _with_link(_staff(purpose, facts), channel, facts.link, _STAFF_LINK)


_CLIENT_LINK = "Or tap to let us know how you are: {link}"
_STAFF_LINK = "Open the case: {link}"


def _with_link(message: Message, channel: Channel, link: str, words: str) -> Message:
    """The recipient's page link at the end of a text or an email; never in a call."""
    if not link or channel is Channel.voice:
        return message
    separator = "\n\n" if channel is Channel.email else " "
    return message.model_copy(
        update={"body": f"{message.body}{separator}{words.format(link=link)}"}
    )


def _client_outreach(channel: Channel, facts: MessageFacts) -> Message:
    """Without consent to detailed messages, every channel says what a voicemail may say on a
    shared phone: first name, practice, call-back number. Nothing about the appointment."""
    practice, callback, first = (
        facts.practice.name,
        facts.practice.callback_number,
        facts.client_first_name,
    )
    if not facts.detailed_ok:
        if channel is Channel.voice:
            body = (
                f"Hello, this is a message for {first} from {practice}. We wanted to check in "
                f"with you. Please call us back at {callback} when you can. Thank you, and take "
                "care."
            )
        else:
            body = (
                f"Hi {first}, this is {practice}. We wanted to check in with you. Please call "
                f"or text us at {callback} when you can."
            )
        return Message(subject=f"A message from {practice}", body=body)
    at = local_time(facts.scheduled_start, facts.client_time_zone)
    day = session_day(facts.scheduled_start, facts.now, facts.client_time_zone)
    what = f"your {at} session with {facts.therapist_name} {day}"
    if channel is Channel.voice:
        body = (
            f"Hello, this is a message for {first} from {practice}. We missed you at {what} "
            f"and wanted to check in with you. Please call us back at {callback} when you can. "
            "Thank you, and take care."
        )
    else:
        body = (
            f"Hi {first}, this is {practice}. We missed you at {what} and want to check in. "
            f"Please call or text us at {callback} when you can."
        )
    return Message(subject=f"Checking in from {practice}", body=body)


def _staff(purpose: Purpose, facts: MessageFacts) -> Message:
    """Therapists and supervisors: the case id, the session time in the practice's zone and
    what happened. Never the client's name (SMS and email are not a secure channel)."""
    case, when = facts.case_id, staff_time(facts.scheduled_start, facts.practice_time_zone)
    answered = (  # not clinical: the words of the button the client chose on their page
        f' The client answered: "{INTENT_LABELS[facts.client_intent]}".'
        if facts.client_intent is not None
        else ""
    )
    happened = (f" {_SITUATION[facts.situation]}" if facts.situation else "") + answered
    if purpose is Purpose.client_texted:
        return Message(
            subject=f"Client {facts.client_id} texted the practice",
            body=f"Client {facts.client_id} texted the practice's number and has no open "
            "missed-session case. The text is kept in their record. Please follow up.",
        )
    if purpose is Purpose.therapist_outreach_started:
        return Message(
            subject=f"High-risk client: outreach started for case {case}",
            body=f"Missed-session case {case} (session {when}): the client is high risk and "
            "did not arrive; outreach has started. You will be asked to confirm the client's "
            "status when it ends.",
        )
    if purpose is Purpose.therapist_confirmation:
        return Message(
            subject=f"Missed-session case {case} needs your confirmation",
            body=f"Missed-session case {case} (session {when}) has finished outreach.{happened} "
            "Please record the outcome, note, plan and fee decision.",
        )
    if purpose is Purpose.therapist_reminder:
        return Message(
            subject=f"Reminder: case {case} still needs your confirmation",
            body=f"Reminder: missed-session case {case} (session {when}) is still waiting "
            f"for your confirmation.{answered}",
        )
    again = purpose is Purpose.supervisor_reminder
    return Message(
        subject=f"{'Still unconfirmed' if again else 'Escalation'}: case {case}, "
        f"waiting {facts.waited}",
        body=f"Missed-session case {case} (session {when}) has waited {facts.waited} for "
        f"{facts.therapist_name} to confirm the client's status.{answered} Please follow up.",
    )
