"""An iCalendar feed read into the sweep's sessions: ids and times only.

`read_sessions` parses a feed once, expands its series over the sweep's window with
`recurring-ical-events` (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides, VTIMEZONE/TZID) and
maps every timed occurrence to a `CalendarSession` through the source's `EventMapping`.

What comes back enters Temporal history and logs, so it holds ids, times and flags, never an
event's summary, description, location, attendees or UID. An event the sweep cannot use is
an `UnreadableEvent` named by its position in the feed and a hash of its UID. One bad event
never stops the rest; only a feed that is not iCalendar at all raises `FeedError`.

What the sweep can and cannot see:

- An instance moved by a RECURRENCE-ID override keeps the appointment id of the instance it
  replaces (the id is made from the UID and the instance's original start), so the sweep sees
  "moved", not "one gone, one new". A single event keeps its id when it is moved, too.
- An override with STATUS:CANCELLED is a session with status "cancelled" (and its
  LAST-MODIFIED says when), so a late cancellation can be told. An instance removed by an
  EXDATE, or an event deleted outright, is simply absent: the sweep (`models.calendar`) takes
  a session with an open case as removed only when two complete reads in a row miss it.
- All-day events (DATE values) are not sessions and are skipped without a word.
- A series that repeats more often than daily, or with INTERVAL=0, is reported, not expanded:
  dateutil would loop for minutes (or forever) and stop the whole sweep.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
import x_wr_timezone
from dateutil import rrule as dateutil_rrule
from dateutil.rrule import rrule
from icalendar.timezone import tzp
from icalendar.timezone.zoneinfo import ZONEINFO
from recurring_ical_events import EventAdapter, Occurrence, SelectComponents, Series

from models.calendar import (
    CalendarSession,
    CalendarSource,
    EventMapping,
    UnreadableEvent,
    appointment_id_for,
)

__all__ = ["FeedError", "read_sessions"]


class _ZoneInfoProvider(ZONEINFO):
    """icalendar's zoneinfo provider, except that a TZID naming a folder of the zone database
    ("America") or too long a name is an unknown zone (icalendar catches only
    ZoneInfoNotFoundError and ValueError: the OSError failed the parse of the whole feed)."""

    def timezone(self, name: str) -> tzinfo | None:
        try:
            return super().timezone(name)
        except OSError:
            return None


tzp.use(_ZoneInfoProvider())


class _WalkTooLong(Exception):
    """A rule walked more days than its budget without getting past the window."""


class _BudgetedIterInfo(dateutil_rrule._iterinfo):  # type: ignore[misc]
    """dateutil's per-iteration day sets, counted against the budget of a rule that has one
    (`_walk_budget`, set by the sweep only: other rules, e.g. a VTIMEZONE's, walk as before).
    dateutil has no limit of its own but the year 9999; it looks `_iterinfo` up from its
    module each time a rule is iterated, so this class takes its place there."""

    # No __slots__ of its own: dateutil initialises every name in `self.__slots__`.

    def _spend(self, found: tuple[Any, int, int]) -> tuple[Any, int, int]:
        budget = getattr(self.rrule, "_walk_budget", None)
        if budget is not None:
            budget[0] -= found[2] - found[1]
            if budget[0] < 0:
                raise _WalkTooLong
        return found

    def ydayset(self, year: int, month: int, day: int) -> tuple[Any, int, int]:
        return self._spend(super().ydayset(year, month, day))

    def mdayset(self, year: int, month: int, day: int) -> tuple[Any, int, int]:
        return self._spend(super().mdayset(year, month, day))

    def wdayset(self, year: int, month: int, day: int) -> tuple[Any, int, int]:
        return self._spend(super().wdayset(year, month, day))

    def ddayset(self, year: int, month: int, day: int) -> tuple[Any, int, int]:
        return self._spend(super().ddayset(year, month, day))


dateutil_rrule._iterinfo = _BudgetedIterInfo


class FeedError(ValueError):
    """The feed as a whole cannot be read: not iCalendar, or a zone no one knows. The message
    is one line and never quotes the feed, which may hold names and notes (PHI)."""


_ID = r"[A-Za-z0-9_.:-]{1,64}"
_ID_FULL = re.compile(_ID)
_ID_CHAR = "A-Za-z0-9_.:-"
_TRUE = frozenset({"TRUE", "YES", "1"})
# Properties that decide when an occurrence is. A broken one (icalendar keeps it as vBroken and
# records it in `component.errors`) makes the whole series unreadable: guessing a time could
# open a case for a session that was moved.
_TIMING = frozenset({"DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"})
# Sessions repeat daily at most. dateutil loops forever on INTERVAL=0 and for minutes on an
# old SECONDLY/MINUTELY/HOURLY rule, which would stop the whole sweep for one odd event.
_FREQUENCIES = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
_TOO_OFTEN = frozenset({"HOURLY", "MINUTELY", "SECONDLY"})
_WITHIN_A_DAY = ("BYHOUR", "BYMINUTE", "BYSECOND")
# A series is expanded from its DTSTART a day at a time: at most this many days (about 55
# years, a fifth of a second), see `_SessionSeries._bound_rules`.
_LONGEST_WALK_DAYS = 20_000


def read_sessions(
    ics: bytes,
    source: CalendarSource,
    start: datetime,
    end: datetime,
    client_ids_by_email: Mapping[str, str],
    shared_emails: Iterable[str] = (),
) -> tuple[list[CalendarSession], list[UnreadableEvent]]:
    """The sessions of one source that start in [start, end), and the events it cannot use.

    `start` and `end` must be aware. `client_ids_by_email` maps client emails (any case) to
    client ids, for events that name their client only as an attendee; an attendee whose
    email is in `shared_emails` (several clients have it) makes the event name no one for
    sure: it is reported, not mapped to one of them. Sessions come back
    sorted by start; unreadable events in feed order. Raises `FeedError` when the feed does
    not parse at all or names an unknown zone in X-WR-TIMEZONE, or when the source's
    `floating_time_zone` is unknown.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware datetimes")
    if not start < end:
        raise ValueError("start must be before end")
    floating = _zone(source.floating_time_zone)
    calendar = _parse(ics)
    if "X-WR-TIMEZONE" in calendar:  # Google: UTC and floating times mean this zone
        try:
            calendar = x_wr_timezone.to_standard(calendar)
        except Exception:
            raise FeedError("the feed's X-WR-TIMEZONE names no known time zone") from None
    read = _Read(
        source, floating, _Rules.of(source.mapping), client_ids_by_email, frozenset(shared_emails)
    )
    try:
        # `of` applies x_wr_timezone.to_standard too (a no-op now). The selection collects the
        # VEVENT series itself, so that a series that fails is reported, not silently dropped.
        query = recurring_ical_events.of(calendar, skip_bad_series=True, components=[_Events(read)])
    except recurring_ical_events.InvalidCalendar:
        raise FeedError("the feed uses a calendar scale other than Gregorian") from None
    # The window in the floating zone: recurring-ical-events compares floating times with the
    # window's wall clock, so floating sessions are placed in the source's zone.
    instances: list[_Instance] = query.between(start.astimezone(floating), end.astimezone(floating))
    for instance in instances:
        read.add(instance, start, end)
    read.unreadable.sort(key=lambda entry: entry[0])
    sessions = sorted(read.sessions.values(), key=lambda s: (s.start, s.appointment_id))
    return sessions, [event for _, event in read.unreadable]


# ---------------------------------------------------------------------- parsing
def _parse(ics: bytes) -> icalendar.Calendar:
    """One calendar from the feed; several VCALENDARs in one file are read as one."""
    try:
        found = icalendar.Calendar.from_ical(ics, multiple=True)
    except Exception:
        # icalendar's messages quote the offending line: never repeat them.
        raise FeedError("the feed is not an iCalendar file (it does not parse)") from None
    calendars = [c for c in found if isinstance(c, icalendar.Calendar)]
    if not calendars:
        raise FeedError("the feed is not an iCalendar file (no VCALENDAR in it)")
    if len(calendars) == 1:
        return calendars[0]
    merged = calendars[0]
    for other in calendars[1:]:
        merged.subcomponents.extend(other.subcomponents)
    return merged


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America", a folder
        raise FeedError(f"unknown floating_time_zone {name!r} for the source") from None


def _uid_hash(uid: str) -> str:
    return hashlib.sha256(uid.encode()).hexdigest()[:8]


def _label(number: int, uid: str | None) -> str:
    """How ops find an event in the feed without its contents: its position and UID hash."""
    if uid is None:
        return f"event {number} (no UID)"
    return f"event {number} (UID hash {_uid_hash(uid)})"


# ---------------------------------------------------------------------- expansion
class _Instance(NamedTuple):
    """One occurrence, as our occurrence class hands it out: the component whose properties
    apply, the series' master (for overrides that leave the client out), its start, and the
    original start that names it (None for a single, non-recurring event)."""

    component: icalendar.Event
    master: icalendar.Event | None
    start: date | datetime
    original: date | datetime | None
    number: int
    uid: str


class _SessionOccurrence(Occurrence):  # type: ignore[misc]
    """An occurrence that knows which instance of its series it is.

    recurring-ical-events gives every occurrence's component a RECURRENCE-ID, even a single
    event's (its DTSTART), so moving a single event would change its id. The adapter, though,
    says whether the component is an override (its own RECURRENCE-ID) or the series' master.
    It also skips the component copy `as_component` makes: the sweep reads the source
    component's properties and takes only the start from the occurrence.
    """

    def __init__(
        self,
        adapter: EventAdapter,
        start: date | datetime | None,
        end: date | datetime | timedelta | None,
        sequence: int,
        series: _SessionSeries,
    ) -> None:
        super().__init__(adapter, start, end, sequence)
        self._series = series

    def as_component(self, keep_recurrence_attributes: bool) -> _Instance:
        adapter = self._adapter
        component = adapter._component
        own_id = component.get("RECURRENCE-ID")
        original: date | datetime | None
        if own_id is not None and self.start == adapter.start:
            original = own_id.dt  # the override itself
        elif own_id is None and "RRULE" not in component and "RDATE" not in component:
            original = None  # a single event: moving it keeps its id
        else:
            # An instance of the series (or of a RANGE=THISANDFUTURE override, which shifts
            # the instances after it): named by where the rule put it.
            original = self.start - adapter.move_recurrences_by
        series = self._series
        master = series.recurrence.core._component if series.recurrence.has_core else None
        number = series.read.numbers.get(id(component), series.number)
        return _Instance(component, master, self.start, original, number, series.uid)


class _SessionSeries(Series):  # type: ignore[misc]
    """A series whose failure while expanding is reported instead of stopping the read (or
    being dropped without a word, as `skip_bad_series` would)."""

    def __init__(self, adapters: list[EventAdapter], read: _Read, number: int) -> None:
        self.read = read
        self.number = number
        super().__init__(adapters)

    def occurrence(
        self,
        adapter: EventAdapter,
        start: date | datetime | None = None,
        end: date | datetime | timedelta | None = None,
    ) -> _SessionOccurrence:
        return _SessionOccurrence(adapter, start, end, self.sequence, self)

    def between(self, span_start: datetime, span_stop: datetime) -> list[_SessionOccurrence]:
        try:
            problem = self._bound_rules(span_stop)
            if problem is not None:
                self.read.problem(self.number, self.uid, problem)
                return []
            # All or nothing: a series that breaks half-way is not half-trusted.
            return list(super().between(span_start, span_stop))
        except _WalkTooLong:
            reason = (
                f"RRULE cannot be expanded within {_LONGEST_WALK_DAYS} days of its DTSTART "
                "(it starts too long ago, or no day matches it near the window)"
            )
            self.read.problem(self.number, self.uid, reason)
            return []
        except Exception as exc:
            self.read.problem(self.number, self.uid, f"cannot be expanded ({type(exc).__name__})")
            return []

    def _bound_rules(self, span_stop: datetime) -> str | None:
        """Give each RRULE a budget of days to walk (see `_BudgetedIterInfo`): dateutil walks
        a rule a day at a time from its DTSTART, and on to the year 9999 when no day ever
        matches (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30 took 7 s, a daily series from the year 1
        as long), which would stall the whole sweep for one odd event."""
        for rule in getattr(self.recurrence, "rrules", []):
            if isinstance(rule, rrule):
                rule._walk_budget = [_LONGEST_WALK_DAYS]
        return None


class _Events(SelectComponents):  # type: ignore[misc]
    """The feed's VEVENTs grouped by UID into series, each checked before it is expanded."""

    def __init__(self, read: _Read) -> None:
        self._read = read

    @staticmethod
    def component_name() -> str:
        return "VEVENT"

    def collect_series_from(
        self, source: icalendar.Component, suppress_errors: tuple[type[Exception], ...]
    ) -> list[Series]:
        read = self._read
        groups: dict[str, list[EventAdapter]] = {}
        first: dict[str, int] = {}
        broken: set[str] = set()
        number = 0
        for component in _events(source):
            number += 1
            read.numbers[id(component)] = number
            uid_prop = component.get("UID")
            if uid_prop is None:
                # Without a UID an event has no stable id: every read would make it new.
                read.problem(number, None, "has no UID")
                continue
            uid = str(uid_prop)
            first.setdefault(uid, number)
            groups.setdefault(uid, []).append(EventAdapter(component))
            reason = _timing_problem(component)
            if reason is not None:
                if uid not in broken:
                    read.problem(number, uid, f"{reason}; skipped with its whole series")
                broken.add(uid)
        series: list[Series] = []
        for uid, adapters in groups.items():
            if uid in broken:
                continue
            try:
                series.append(_SessionSeries(adapters, read, first[uid]))
            except Exception as exc:
                read.problem(first[uid], uid, f"cannot be expanded ({type(exc).__name__})")
        return series


def _events(calendar: icalendar.Component) -> Iterable[icalendar.Component]:
    """The VEVENTs: children of the VCALENDAR (a full `walk` would also visit every VALARM)."""
    return (c for c in calendar.subcomponents if c.name == "VEVENT")


def _timing_problem(component: icalendar.Component) -> str | None:
    """Why this component's times cannot be trusted, or None."""
    broken = sorted({name for name, _ in getattr(component, "errors", ()) if name in _TIMING})
    if broken:
        return f"unreadable {', '.join(broken)}"
    if "DTSTART" not in component:
        return "has no DTSTART"
    for name in ("DTSTART", "RECURRENCE-ID"):
        prop = component.get(name)
        if prop is None or isinstance(prop, list):
            continue
        try:
            value = prop.dt
        except Exception:
            return f"unreadable {name}"
        if not isinstance(value, date):
            return f"unreadable {name}"
        if isinstance(value, datetime) and value.tzinfo is None and "TZID" in prop.params:
            # icalendar leaves a time whose TZID it cannot resolve floating: not our guess.
            return f"{name} names an unknown time zone"
    return _rule_problem(component.get("RRULE"))


def _rule_problem(prop: Any) -> str | None:
    """Why an RRULE would not expand safely (see `_FREQUENCIES`), or None."""
    for rule in prop if isinstance(prop, list) else [] if prop is None else [prop]:
        if not hasattr(rule, "get"):
            return "unreadable RRULE"
        frequencies = [str(f).strip().upper() for f in rule.get("FREQ") or ()]
        if len(frequencies) != 1 or frequencies[0] not in _FREQUENCIES | _TOO_OFTEN:
            return "unreadable RRULE (FREQ)"
        if frequencies[0] in _TOO_OFTEN:
            return f"RRULE repeats {frequencies[0]} (sessions repeat daily at most)"
        # Several hours, minutes or seconds a day make any rule more than daily: DAILY with
        # 24 BYHOUR x 60 BYMINUTE x 60 BYSECOND values is every second (millions of sessions).
        for part in _WITHIN_A_DAY:
            if len(rule.get(part) or ()) > 1:
                return f"RRULE repeats more than once a day ({part})"
        try:
            if any(int(i) < 1 for i in rule.get("INTERVAL") or ()):
                return "unreadable RRULE (INTERVAL below 1)"
        except (TypeError, ValueError):
            return "unreadable RRULE (INTERVAL)"
    return None


# ---------------------------------------------------------------------- mapping
@dataclass(frozen=True, slots=True)
class _Rules:
    """A source's `EventMapping`, compiled once per read."""

    client_token: re.Pattern[str] | None
    client_property: str | None
    by_attendee: bool
    therapist_token: re.Pattern[str] | None
    therapist_property: str | None
    owner: str | None
    no_show_categories: frozenset[str]
    no_show_property: str | None
    check_in_categories: frozenset[str]
    check_in_property: str | None

    @classmethod
    def of(cls, mapping: EventMapping) -> _Rules:
        return cls(
            client_token=_token(mapping.client_token),
            client_property=mapping.client_property or None,
            by_attendee=mapping.client_by_attendee_email,
            therapist_token=_token(mapping.therapist_token),
            therapist_property=mapping.therapist_property or None,
            owner=mapping.therapist_id or None,
            no_show_categories=frozenset(c.strip().casefold() for c in mapping.no_show_categories),
            no_show_property=mapping.no_show_property or None,
            check_in_categories=frozenset(
                c.strip().casefold() for c in mapping.check_in_categories
            ),
            check_in_property=mapping.check_in_property or None,
        )


def _token(token: str) -> re.Pattern[str] | None:
    """ "client:C123" anywhere in a text, the prefix in any case, not inside a longer word."""
    if not token:
        return None
    return re.compile(rf"(?<![A-Za-z0-9_]){re.escape(token)}({_ID})(?![{_ID_CHAR}])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Facts:
    """What one component says, worked out once per component, not once per occurrence."""

    client_id: str | None
    client_problem: str | None  # e.g. it names two clients
    therapist_id: str | None  # named by the event itself (not the calendar's owner)
    cancelled: bool
    no_show: bool
    checked_in: bool
    modified_at: datetime | None


@dataclass
class _Read:
    """One read of one feed: the rules, the caches and what was found so far."""

    source: CalendarSource
    floating: tzinfo
    rules: _Rules
    emails: Mapping[str, str]
    shared_emails: frozenset[str]
    sessions: dict[str, CalendarSession] = field(default_factory=dict)
    unreadable: list[tuple[int, UnreadableEvent]] = field(default_factory=list)
    facts: dict[int, _Facts] = field(default_factory=dict)  # by id() of the component
    numbers: dict[int, int] = field(default_factory=dict)  # id() of a VEVENT -> its position

    def __post_init__(self) -> None:
        self.emails = {e.strip().casefold(): c for e, c in self.emails.items()}
        self.shared_emails = frozenset(e.strip().casefold() for e in self.shared_emails)

    def problem(
        self,
        number: int,
        uid: str | None,
        reason: str,
        at: datetime | None = None,
        appointment_id: str | None = None,
    ) -> None:
        where = _label(number, uid)
        if at is not None:
            where += f" at {at:%Y-%m-%d %H:%M} UTC"
        event = UnreadableEvent(
            source_id=self.source.source_id,
            event=where,
            reason=reason,
            appointment_id=appointment_id,
        )
        self.unreadable.append((number, event))

    def add(self, instance: _Instance, window_start: datetime, window_end: datetime) -> None:
        """Map one occurrence: a session, an unreadable event, or nothing (all-day, outside)."""
        if not isinstance(instance.start, datetime):
            return  # all-day: not a session
        start = self.utc(instance.start)
        if not window_start <= start < window_end:
            return  # overlaps the window but starts outside it
        try:
            session = self.session(instance, start)
            # Skipped, but seen: not missing, so a case for it is not taken as cancelled.
            seen = self.appointment_id(instance) if isinstance(session, str) else None
        except Exception as exc:  # a property of a shape no one expected
            self.problem(
                instance.number, instance.uid, f"cannot be read ({type(exc).__name__})", start
            )
            return
        if isinstance(session, str):
            self.problem(instance.number, instance.uid, session, start, seen)
        elif session.appointment_id in self.sessions:
            self.problem(
                instance.number,
                instance.uid,
                "repeats another occurrence",
                start,
                session.appointment_id,
            )
        else:
            self.sessions[session.appointment_id] = session

    def session(self, instance: _Instance, start: datetime) -> CalendarSession | str:
        own = self.facts_of(instance.component)
        master = (
            self.facts_of(instance.master)
            if instance.master is not None and instance.master is not instance.component
            else None
        )
        # An override that leaves the client or therapist out (some clients write only what
        # changed) is still the master's session: a cancellation must not go unseen.
        client_id, problem = own.client_id, own.client_problem
        if client_id is None and problem is None and master is not None:
            client_id, problem = master.client_id, master.client_problem
        if problem is not None:
            return problem
        if client_id is None:
            return "maps to no client"
        therapist_id = (
            own.therapist_id or (master.therapist_id if master else None) or self.rules.owner
        )
        return CalendarSession(
            appointment_id=self.appointment_id(instance),
            source_id=self.source.source_id,
            client_id=client_id,
            therapist_id=therapist_id,
            start=start,
            status="cancelled" if own.cancelled else "confirmed",
            no_show=own.no_show,
            checked_in=own.checked_in,
            modified_at=own.modified_at,
        )

    def appointment_id(self, instance: _Instance) -> str:
        original = instance.original
        recurrence_id = None
        if isinstance(original, datetime):
            recurrence_id = self.utc(original)
        elif original is not None:  # a timed override of an all-day series: its day, floating
            recurrence_id = self.utc(datetime(original.year, original.month, original.day))
        return appointment_id_for(self.source.source_id, instance.uid, recurrence_id)

    def utc(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.floating)
        return moment.astimezone(UTC)

    def facts_of(self, component: icalendar.Component) -> _Facts:
        key = id(component)  # the components live as long as this read
        facts = self.facts.get(key)
        if facts is None:
            facts = self.facts[key] = self.work_out(component)
        return facts

    def work_out(self, component: icalendar.Component) -> _Facts:
        rules = self.rules
        texts = [*_values(component.get("DESCRIPTION")), *_values(component.get("SUMMARY"))]
        named = _named(texts, rules.client_token, component, rules.client_property)
        client_id, client_problem = _one(
            named or (self.attendee_clients(component) if rules.by_attendee else []),
            "names more than one client",
        )
        if client_id is None and client_problem is None and self.shared_attendee(component):
            client_id, client_problem = None, "an attendee's email belongs to several clients"
        therapist_id, _ = _one(
            _named(texts, rules.therapist_token, component, rules.therapist_property), ""
        )
        categories = _categories(component)
        return _Facts(
            client_id=client_id,
            client_problem=client_problem,
            therapist_id=therapist_id,
            cancelled=str(component.get("STATUS", "")).strip().upper() == "CANCELLED",
            no_show=bool(categories & rules.no_show_categories)
            or _flag(component, rules.no_show_property),
            checked_in=bool(categories & rules.check_in_categories)
            or _flag(component, rules.check_in_property),
            # Not DTSTAMP: in an export it is when the export was made, not when the event was
            # changed, so it would make every cancellation look late.
            modified_at=_stamp(component.get("LAST-MODIFIED")),
        )

    def attendee_clients(self, component: icalendar.Component) -> list[str]:
        found = []
        for address in _attendee_emails(component):
            client_id = self.emails.get(address)
            if client_id is not None:
                found.append(client_id)
        return found

    def shared_attendee(self, component: icalendar.Component) -> bool:
        if not self.rules.by_attendee:
            return False
        return any(a in self.shared_emails for a in _attendee_emails(component))


def _attendee_emails(component: icalendar.Component) -> list[str]:
    """The attendees' email addresses, case-folded."""
    found = []
    for attendee in _values(component.get("ATTENDEE")):
        address = attendee.strip()
        if address[:7].lower() == "mailto:":
            address = address[7:]
        found.append(address.strip().casefold())
    return found


def _values(prop: Any) -> list[str]:
    """A property's text values: it may appear once, several times, or not at all."""
    if prop is None:
        return []
    if isinstance(prop, list):
        return [str(p) for p in prop]
    return [str(prop)]


def _named(
    texts: Sequence[str], token: re.Pattern[str] | None, component: Any, prop: str | None
) -> list[str]:
    """The ids a component names: by token in its texts, else in its X- property."""
    if token is not None:
        found = [_trimmed(m.group(1)) for text in texts for m in token.finditer(text)]
        found = [f for f in found if f]
        if found:
            return found
    if prop is not None:
        return [v.strip() for v in _values(component.get(prop)) if _ID_FULL.fullmatch(v.strip())]
    return []


def _trimmed(found: str) -> str:
    """ "client:C123." at the end of a sentence names C123: the full stop is not the id's."""
    return found.rstrip(".")


def _one(found: list[str], ambiguous: str) -> tuple[str | None, str | None]:
    """The one id named (any number of times), or the problem when several different are."""
    distinct = list(dict.fromkeys(found))
    if not distinct:
        return None, None
    if len(distinct) > 1:
        return None, ambiguous
    return distinct[0], None


def _categories(component: Any) -> frozenset[str]:
    """CATEGORIES, which may appear several times, each a comma list."""
    prop = component.get("CATEGORIES")
    if prop is None:
        return frozenset()
    found: set[str] = set()
    for each in prop if isinstance(prop, list) else [prop]:
        cats = getattr(each, "cats", None)
        names = cats if cats is not None else str(each).split(",")
        found.update(str(name).strip().casefold() for name in names)
    return frozenset(found)


def _flag(component: Any, prop: str | None) -> bool:
    if prop is None:
        return False
    return any(v.strip().upper() in _TRUE for v in _values(component.get(prop)))


def _stamp(prop: Any) -> datetime | None:
    """LAST-MODIFIED/DTSTAMP in UTC (RFC 5545 requires UTC; a floating one is taken as UTC).
    A broken one is no reason to lose the session: it is just not known."""
    try:
        value = prop.dt
    except Exception:
        return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
