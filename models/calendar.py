"""The practice calendar as the sweep sees it: sources, sessions, and what to do about them.

A calendar source (an iCalendar feed from a file or an https URL, or a CalDAV calendar) is read
for a window around now; every event occurrence in it becomes a `CalendarSession`: ids and
times only, never a name or a description, because sweep results enter Temporal history.
`plan_sweep` then decides, as a pure function of those sessions, what the case store already
knows about them and the time, what the sweep does: open a case, tell a case the client
checked in, tell a case its session was cancelled or moved, record a late cancellation.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from models.edge import checked_id, checked_text


class SourceKind(StrEnum):
    ics = "ics"  # an iCalendar file path or an http(s) URL (a calendar's export/subscription)
    caldav = "caldav"  # a CalDAV calendar collection URL (Nextcloud, Fastmail, iCloud, ...)


class SourceMode(StrEnum):
    marked = "marked"  # a case opens when the event is marked a no-show
    presumed = "presumed"  # a case opens at the start of every session without a check-in


SourceId = Annotated[str, AfterValidator(checked_id)]


class EventMapping(BaseModel):
    """How an event names its client and therapist, and how it is marked. Per source, because
    every practice-management system writes its events differently."""

    model_config = ConfigDict(extra="forbid")

    client_token: str = Field(
        default="client:",
        description='A token in the description or summary, e.g. "client:C123".',
    )
    client_property: str | None = Field(
        default="X-CLIENT-ID", description="An X- property holding the client id."
    )
    client_by_attendee_email: bool = Field(
        default=True, description="An attendee whose email is a client's email in the directory."
    )
    therapist_token: str = Field(default="therapist:", description='e.g. "therapist:T100".')
    therapist_property: str | None = "X-THERAPIST-ID"
    therapist_id: str | None = Field(
        default=None, description="The calendar's owner: the therapist of every session in it."
    )
    no_show_categories: list[str] = Field(default=["NO-SHOW", "NOSHOW", "NO SHOW"])
    no_show_property: str | None = Field(
        default="X-NO-SHOW", description="An X- property whose value TRUE/YES/1 marks a no-show."
    )
    check_in_categories: list[str] = Field(default=["CHECKED-IN", "ARRIVED"])
    check_in_property: str | None = "X-CHECKED-IN"


class CalendarSource(BaseModel):
    """A calendar the practice already keeps. `location` is a file path, an http(s) URL or a
    CalDAV collection URL; a CalDAV password is kept encrypted in the store, never here."""

    source_id: SourceId
    kind: SourceKind
    location: Annotated[str, AfterValidator(checked_text(2000))] = Field(min_length=1)
    mode: SourceMode = SourceMode.marked
    username: Annotated[str, AfterValidator(checked_text(200))] | None = None
    floating_time_zone: str = Field(
        default="UTC", description="The zone of times without one (the practice's zone)."
    )
    mapping: EventMapping = EventMapping()


SessionStatus = Literal["confirmed", "cancelled"]


class CalendarSession(BaseModel):
    """One occurrence of one event, as the sweep may carry it through Temporal: no names, no
    descriptions, no addresses. `appointment_id` is stable across reads, edits and moves."""

    appointment_id: str
    source_id: str
    client_id: str | None
    therapist_id: str | None
    start: datetime
    status: SessionStatus = "confirmed"
    no_show: bool = False
    checked_in: bool = False
    modified_at: datetime | None = Field(
        default=None, description="LAST-MODIFIED (or DTSTAMP): when a cancellation was made."
    )


class UnreadableEvent(BaseModel):
    """An event the sweep skipped, said without its contents."""

    source_id: str
    event: str = Field(description='Which one, e.g. "event 12 (UID hash 3f2a...)".')
    reason: str


def appointment_id_for(source_id: str, uid: str, recurrence_id: datetime | None) -> str:
    """A stable, opaque appointment id for an event occurrence: the UID may hold anything (an
    email, a name), so it is hashed; an instance of a series is named by its original start."""
    instance = recurrence_id.isoformat() if recurrence_id is not None else ""
    digest = hashlib.sha256(f"{source_id}\n{uid}\n{instance}".encode()).hexdigest()[:20]
    return f"cal.{source_id}.{digest}"


# ---------------------------------------------------------------------- what a sweep does
class KnownSession(BaseModel):
    """What the case store already knows about a session the sweep saw before."""

    appointment_id: str
    case_open: bool  # a case exists and is not closed
    case_opened: bool  # a case was ever opened for it
    scheduled_start: datetime | None = None  # the start the case was opened for
    arrival_reported: bool = False
    cancellation_reported: bool = False
    late_cancellation_recorded: bool = False


class OpenCase(BaseModel):
    kind: Literal["open"] = "open"
    appointment_id: str
    client_id: str
    therapist_id: str | None
    start: datetime
    late_by: timedelta = Field(description="How long after the session's start it opened.")


class ReportArrival(BaseModel):
    kind: Literal["arrived"] = "arrived"
    appointment_id: str


class ReportCancellation(BaseModel):
    kind: Literal["cancelled"] = "cancelled"
    appointment_id: str
    moved_to: datetime | None = None  # None: cancelled; else the new start


class RecordLateCancellation(BaseModel):
    kind: Literal["late_cancellation"] = "late_cancellation"
    appointment_id: str
    client_id: str
    start: datetime
    cancelled_at: datetime
