"""The case's timeline at minimum necessary, for the close-out page: who was tried (by role,
never a name or a number), when, by which channel, with what result. No message text, no
address, no note: the page is opened from a link sent over SMS or email."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from models.answers import INTENT_LABELS
from models.case import Attempt, AttemptResult, CaseStatus, RecipientRole
from models.directory import Channel

ROLE = {
    RecipientRole.client: "Client",
    RecipientRole.emergency_contact: "Emergency contact",
    RecipientRole.therapist: "Therapist",
    RecipientRole.supervisor: "Supervisor",
    RecipientRole.on_call: "On-call address",
}
CHANNEL = {Channel.voice: "Call", Channel.sms: "Text", Channel.email: "Email"}
RESULT = {
    AttemptResult.sent: "sent",
    AttemptResult.answered: "answered",
    AttemptResult.voicemail: "voicemail left",
    AttemptResult.no_answer: "no answer",
    AttemptResult.busy: "busy",
    AttemptResult.failed: "failed",
    AttemptResult.invalid_recipient: "not a usable number or address",
    AttemptResult.opted_out: "opted out",
    AttemptResult.unconfirmed: "unconfirmed (not resent)",
    AttemptResult.dry_run: "dry run: nothing sent",
}


@dataclass(frozen=True)
class Entry:
    at: datetime
    when: str
    who: str
    what: str
    result: str


def timeline(
    opened_at: datetime, status: CaseStatus, when: Callable[[datetime], str]
) -> list[Entry]:
    entries = [Entry(opened_at, when(opened_at), "Case", "opened", "")]
    entries += [_attempt(a, when) for a in status.attempts]
    if status.therapist_asked_at is not None:
        at = status.therapist_asked_at
        entries.append(Entry(at, when(at), "Therapist", "asked to confirm", ""))
    entries.sort(key=lambda e: e.at)
    return entries


def _attempt(attempt: Attempt, when: Callable[[datetime], str]) -> Entry:
    return Entry(
        attempt.at,
        when(attempt.at),
        ROLE[attempt.recipient_role],
        CHANNEL[attempt.channel],
        RESULT.get(attempt.result, attempt.result.value),
    )


def client_answer(status: CaseStatus) -> str | None:
    """What the client said, if they answered: their choice on their page, or that they
    responded some other way."""
    if status.client_intent is not None:
        said = INTENT_LABELS[status.client_intent]
        return f"The client answered on their page: \u201c{said}\u201d"
    if status.client_responded:
        return "The client responded."
    return None
