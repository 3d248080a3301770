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
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

from models.edge import checked_id, checked_text, is_edge


class SourceKind(StrEnum):
    ics = "ics"  # an iCalendar file path or an http(s) URL (a calendar's export/subscription)
    caldav = "caldav"  # a CalDAV calendar collection URL (Nextcloud, Fastmail, iCloud, ...)


class SourceMode(StrEnum):
    marked = "marked"  # a case opens when the event is marked a no-show
    presumed = "presumed"  # a case opens at the start of every session without a check-in


def _checked_source_id(value: str, info: ValidationInfo) -> str:
    """At the edge, 1-24 id characters: appointment ids made from it must fit in 64."""
    checked_id(value, info)
    if is_edge(info) and len(value) > 24:
        raise ValueError("at most 24 characters: ASCII letters, digits, _ . : -")
    return value


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

    source_id: Annotated[str, AfterValidator(_checked_source_id)]
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


SweepAction = OpenCase | ReportArrival | ReportCancellation | RecordLateCancellation


class SweepRules(BaseModel):
    """What the sweep may do, from the source and the escalation policy."""

    mode: SourceMode
    late_cancellation_window: timedelta = timedelta(hours=24)
    catch_up: timedelta = Field(
        default=timedelta(days=2),
        description="How long after its start a missed session still opens a case (downtime).",
    )


def moved_appointment_id(appointment_id: str, start: datetime) -> str:
    """A session moved after its case opened is a new appointment at its new time (so a miss
    of the rescheduled session opens a case of its own)."""
    return f"{appointment_id}.{start.astimezone(UTC):%Y%m%d%H%M}"


def plan_sweep(
    sessions: list[CalendarSession],
    known: Mapping[str, KnownSession],
    rules: SweepRules,
    now: datetime,
    window: tuple[datetime, datetime] | None = None,
) -> list[SweepAction]:
    """What one sweep does about the sessions it read: a pure function, so a sweep run twice,
    or after days of downtime, decides the same (the case store remembers what was done).

    `known` also holds the open cases of this source whose session starts inside the `window`
    read: one that is no longer in the calendar (deleted, or moved out of the window) is
    reported cancelled."""
    actions: list[SweepAction] = []
    read = {s.appointment_id for s in sessions}
    if window is not None:
        for earlier in known.values():
            start = earlier.scheduled_start
            if earlier.appointment_id in read or start is None or not earlier.case_open:
                continue
            if not earlier.cancellation_reported and window[0] <= start <= window[1]:
                actions.append(ReportCancellation(appointment_id=earlier.appointment_id))
    for session in sessions:
        if session.client_id is None:
            continue  # reported by the feed reader as an event that maps to nobody
        seen: KnownSession | None = known.get(session.appointment_id)
        if session.status == "cancelled":
            actions += _cancelled(session, seen, rules)
            continue
        appointment_id = session.appointment_id
        if seen and seen.case_opened and seen.scheduled_start not in (None, session.start):
            if seen.case_open and not seen.cancellation_reported:
                actions.append(
                    ReportCancellation(appointment_id=appointment_id, moved_to=session.start)
                )
            appointment_id = moved_appointment_id(appointment_id, session.start)
            seen = known.get(appointment_id)
        if seen and seen.case_open and session.checked_in and not seen.arrival_reported:
            actions.append(ReportArrival(appointment_id=appointment_id))
        if seen and seen.case_opened:
            continue
        if _qualifies(session, rules, now):
            actions.append(
                OpenCase(
                    appointment_id=appointment_id,
                    client_id=session.client_id,
                    therapist_id=session.therapist_id,
                    start=session.start,
                    late_by=now - session.start,
                )
            )
    return actions


def _qualifies(session: CalendarSession, rules: SweepRules, now: datetime) -> bool:
    """A missed session: started, not checked in, not too long ago, and (in `marked` mode)
    marked a no-show."""
    if session.checked_in or session.start > now or now - session.start > rules.catch_up:
        return False
    return rules.mode is SourceMode.presumed or session.no_show


def _cancelled(
    session: CalendarSession, seen: KnownSession | None, rules: SweepRules
) -> list[SweepAction]:
    actions: list[SweepAction] = []
    if seen and seen.case_open and not seen.cancellation_reported:
        actions.append(ReportCancellation(appointment_id=session.appointment_id))
    cancelled_at = session.modified_at
    late = (
        cancelled_at is not None and cancelled_at >= session.start - rules.late_cancellation_window
    )
    if late and not (seen and seen.late_cancellation_recorded) and session.client_id:
        assert cancelled_at is not None
        actions.append(
            RecordLateCancellation(
                appointment_id=session.appointment_id,
                client_id=session.client_id,
                start=session.start,
                cancelled_at=cancelled_at,
            )
        )
    return actions


class SweepReport(BaseModel):
    """What one sweep of one source did: ids, counts and times only (it enters history)."""

    source_id: str
    read_ok: bool
    window_start: datetime
    window_end: datetime
    sessions: int = 0
    opened: dict[str, float] = Field(
        default={}, description="appointment id -> seconds after the session's start it opened"
    )
    arrivals: list[str] = []
    cancellations: list[str] = []
    late_cancellations: list[str] = []
    skipped: list[str] = Field(default=[], description="Events skipped, said without contents.")
    error: str | None = None

    def summary(self) -> str:
        if not self.read_ok:
            return f"not read: {self.error}"
        return (
            f"{self.sessions} sessions; opened {len(self.opened)}, check-ins "
            f"{len(self.arrivals)}, cancellations {len(self.cancellations)}, late cancellations "
            f"{len(self.late_cancellations)}, skipped {len(self.skipped)}"
        )
