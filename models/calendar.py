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

from models.directory import is_time_zone
from models.edge import checked_id, checked_text, is_edge


class SourceKind(StrEnum):
    ics = "ics"  # an iCalendar file path or an http(s) URL (a calendar's export/subscription)
    caldav = "caldav"  # a CalDAV calendar collection URL (Nextcloud, Fastmail, iCloud, ...)


class SourceMode(StrEnum):
    marked = "marked"  # a case opens when the event is marked a no-show
    presumed = "presumed"  # a case opens at the start of every session without a check-in


def _checked_floating_zone(value: str, info: ValidationInfo) -> str:
    """At the edge, a zone this machine knows: a bad one would fail every read of the source."""
    if is_edge(info) and not is_time_zone(value):
        shown = value if len(value) <= 64 else value[:64] + "..."
        raise ValueError(f"unknown IANA time zone {shown!r} (e.g. America/New_York)")
    return value


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
    floating_time_zone: Annotated[str, AfterValidator(_checked_floating_zone)] = Field(
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
        default=None, description="LAST-MODIFIED: when a cancellation was made, if known."
    )


class UnreadableEvent(BaseModel):
    """An event the sweep skipped, said without its contents."""

    source_id: str
    appointment_id: str | None = Field(
        default=None, description="The occurrence's id, where it could be worked out."
    )
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
    client_id: str | None = None  # the client of its case, if one was opened
    case_open: bool  # a case exists and is not closed
    case_opened: bool  # a case was ever opened for it
    scheduled_start: datetime | None = None  # the start the case was opened for
    arrival_reported: bool = False
    cancellation_reported: bool = False
    late_cancellation_recorded: bool = False
    cancellation_seen: bool = False  # its lateness was decided (once, when first seen)
    absent_since: datetime | None = None  # a complete read first missed it then


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


class NoteCancellation(BaseModel):
    """A session first seen cancelled: whether it was cancelled late is decided now, once
    (a feed that rewrites LAST-MODIFIED later must not change the fee decision)."""

    kind: Literal["cancellation_seen"] = "cancellation_seen"
    appointment_id: str
    client_id: str
    start: datetime
    cancelled_at: datetime | None  # None: not known (then never counted late)
    late: bool


class NoteAbsence(BaseModel):
    """A session with an open case is missing from a complete read (`absent`), or is back."""

    kind: Literal["absence"] = "absence"
    appointment_id: str
    absent: bool


class NoteRestored(BaseModel):
    """A session seen cancelled is in the calendar again: its late cancellation is void."""

    kind: Literal["restored"] = "restored"
    appointment_id: str


SweepAction = (
    OpenCase | ReportArrival | ReportCancellation | NoteCancellation | NoteAbsence | NoteRestored
)


class SweepRules(BaseModel):
    """What the sweep may do, from the source and the escalation policy."""

    mode: SourceMode
    late_cancellation_window: timedelta = timedelta(hours=24)
    catch_up: timedelta = Field(
        default=timedelta(days=2),
        description="How long after its start a missed session still opens a case (downtime).",
    )


# A source added now still opens cases for sessions of the last hour (a follow-up then is
# timely), never for last week's, which the practice followed up by hand.
NEW_SOURCE_LOOKBACK = timedelta(hours=1)


class SweepRead(BaseModel):
    """One successful read of one source, as `plan_sweep` needs it."""

    sessions: list[CalendarSession]
    window: tuple[datetime, datetime]
    complete: bool = Field(
        default=True,
        description="Every event was read or accounted for: only then does a session's "
        "absence say anything (an unreadable event may be the session that seems gone).",
    )
    present: frozenset[str] = Field(
        default=frozenset(), description="Appointment ids of events skipped but seen."
    )
    previous_read_at: datetime | None = Field(
        default=None, description="The source's last successful read before this one."
    )
    source_added_at: datetime | None = Field(
        default=None,
        description="When the source was added: sessions more than NEW_SOURCE_LOOKBACK before "
        "it open no case (a new source must not reach out about last week).",
    )


def moved_appointment_id(appointment_id: str, start: datetime) -> str:
    """A session moved after its case opened is a new appointment at its new time (so a miss
    of the rescheduled session opens a case of its own)."""
    return f"{appointment_id}.{start.astimezone(UTC):%Y%m%d%H%M}"


def current_appointment_id(session: CalendarSession, known: Mapping[str, KnownSession]) -> str:
    """The appointment a session read now stands for: itself, or, when its case was opened
    for another start, the moved appointment at its new start."""
    seen = known.get(session.appointment_id)
    if seen and seen.case_opened and seen.scheduled_start not in (None, session.start):
        return moved_appointment_id(session.appointment_id, session.start)
    return session.appointment_id


def plan_sweep(
    read: SweepRead,
    known: Mapping[str, KnownSession],
    rules: SweepRules,
    now: datetime,
) -> list[SweepAction]:
    """What one sweep does about the sessions it read: a pure function, so a sweep run twice,
    or after days of downtime, decides the same (the case store remembers what was done).

    `known` holds what the store knows of every session read, of the moved appointments they
    stand for (`current_appointment_id`), and of this source's open cases whose session starts
    inside the window read. Such a case whose session is missing from two complete reads in a
    row (deleted, or moved out of the window) is reported cancelled; a read of no sessions at
    all proves nothing (an emptied export, a wrong account) and cancels nothing."""
    sessions = read.sessions
    actions: list[SweepAction] = []
    present = set(read.present)
    for session in sessions:
        present |= {session.appointment_id, current_appointment_id(session, known)}
    # An edit of a series (its start, or a single event made recurring) gives its sessions new
    # ids; a session of the same client at the same start is the same session, not a removal.
    slots = {(s.client_id, s.start) for s in sessions if s.client_id}
    for earlier in known.values():
        if (earlier.client_id, earlier.scheduled_start) in slots:
            present.add(earlier.appointment_id)
    for earlier in known.values():
        if earlier.appointment_id in present:
            if earlier.absent_since is not None:
                actions.append(NoteAbsence(appointment_id=earlier.appointment_id, absent=False))
            continue
        actions += _absent(earlier, read, now)
    for session in sessions:
        if session.client_id is None:
            continue  # reported by the feed reader as an event that maps to nobody
        seen: KnownSession | None = known.get(session.appointment_id)
        appointment_id = current_appointment_id(session, known)
        if session.status == "cancelled":
            actions += _cancelled(session, appointment_id, known, rules, read, now)
            continue
        current = known.get(appointment_id)
        if current and current.cancellation_seen:
            actions.append(NoteRestored(appointment_id=appointment_id))
        if appointment_id != session.appointment_id:
            assert seen is not None
            if seen.case_open and not seen.cancellation_reported:
                actions.append(
                    ReportCancellation(
                        appointment_id=session.appointment_id, moved_to=session.start
                    )
                )
            seen = known.get(appointment_id)
        if seen and seen.case_open and session.checked_in and not seen.arrival_reported:
            actions.append(ReportArrival(appointment_id=appointment_id))
        if seen and seen.case_opened:
            continue
        moved = appointment_id != session.appointment_id
        if _qualifies(session, rules, now, read, moved):
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


def _absent(earlier: KnownSession, read: SweepRead, now: datetime) -> list[SweepAction]:
    """A session with an open case, in the window, not in this read."""
    start = earlier.scheduled_start
    if start is None or not earlier.case_open or earlier.cancellation_reported:
        return []
    if not read.window[0] <= start <= read.window[1]:
        return []
    if not read.complete or not read.sessions:
        return []  # this read cannot tell a deleted session from one it could not see
    if earlier.absent_since is None:
        return [NoteAbsence(appointment_id=earlier.appointment_id, absent=True)]
    if earlier.absent_since < now:  # missing from an earlier complete read too
        return [ReportCancellation(appointment_id=earlier.appointment_id)]
    return []


def _qualifies(
    session: CalendarSession, rules: SweepRules, now: datetime, read: SweepRead, moved: bool
) -> bool:
    """A missed session: started, not checked in, not too long ago, not before the source was
    added, and (in `marked` mode) marked a no-show. A moved session keeps the categories it
    had (calendars carry them along when an event is dragged): its no-show mark counts only
    if the event was changed after its new start."""
    if session.checked_in or session.start > now or now - session.start > rules.catch_up:
        return False
    if read.source_added_at is not None:
        if session.start < read.source_added_at - NEW_SOURCE_LOOKBACK:
            return False
    if rules.mode is SourceMode.presumed:
        return True
    if moved:
        return session.no_show and (
            session.modified_at is not None and session.modified_at >= session.start
        )
    return session.no_show


def _cancelled(
    session: CalendarSession,
    appointment_id: str,
    known: Mapping[str, KnownSession],
    rules: SweepRules,
    read: SweepRead,
    now: datetime,
) -> list[SweepAction]:
    """A cancelled session (or the moved appointment it stands for): its open case is told,
    and whether it was cancelled late is decided once."""
    actions: list[SweepAction] = []
    seen = known.get(appointment_id)
    if seen and seen.case_open and not seen.cancellation_reported:
        actions.append(ReportCancellation(appointment_id=appointment_id))
    original = known.get(session.appointment_id)
    if appointment_id != session.appointment_id and original:
        # Moved and cancelled between two reads: the case of the original start is told too.
        if original.case_open and not original.cancellation_reported:
            actions.append(ReportCancellation(appointment_id=session.appointment_id))
    if (seen and (seen.cancellation_seen or seen.late_cancellation_recorded)) or not (
        session.client_id
    ):
        return actions
    cancelled_at = session.modified_at or _cancelled_since_last_read(session, read, now)
    late = (
        cancelled_at is not None and cancelled_at >= session.start - rules.late_cancellation_window
    )
    actions.append(
        NoteCancellation(
            appointment_id=appointment_id,
            client_id=session.client_id,
            start=session.start,
            cancelled_at=cancelled_at,
            late=late,
        )
    )
    return actions


def _cancelled_since_last_read(
    session: CalendarSession, read: SweepRead, now: datetime
) -> datetime | None:
    """A cancellation the feed does not date (no LAST-MODIFIED; DTSTAMP is when the export
    was made, not when the event changed): if the previous read covered the session and did
    not see it cancelled, it was cancelled since; dated to that read, the earliest it can have
    been (the client gets the benefit of the doubt, after downtime too). Else not known."""
    if read.previous_read_at is None:
        return None
    lookahead = read.window[1] - now
    if session.start <= read.previous_read_at + lookahead:
        return read.previous_read_at
    return None


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
