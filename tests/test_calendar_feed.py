"""The iCalendar feed reader: series, overrides, zones, the event mapping, bad events, fetching.

Every feed is written out in the test, so what each case proves is visible next to it. The
names, notes and emails in these events must never come back in a result: the results enter
Temporal history.
"""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from calendars.feed import FeedError, read_sessions
from calendars.fetch import fetch_ics
from models.calendar import CalendarSession, CalendarSource, EventMapping, UnreadableEvent
from tests.calendar_data import NEW_YORK_VTIMEZONE

SUMMARY = "Alex Smith - weekly therapy"
DESCRIPTION = "Alex mentioned trouble sleeping. client:C100"
EMAIL = "Alex.Smith@Example.com"
PHI = (
    "Alex",
    "Smith",
    "sleeping",
    "therapy",
    EMAIL.lower(),
    "example.com",
    "alex-series@practice",
)


# ---------------------------------------------------------------------- writing feeds
def ny(stamp: str, tzid: str = "America/New_York") -> str:
    """A DTSTART/RECURRENCE-ID/EXDATE tail for a local New York time: ';TZID=...:stamp'."""
    return f";TZID={tzid}:{stamp}"


def vevent(
    uid: str,
    dtstart: str,
    *lines: str,
    summary: str | None = SUMMARY,
    description: str | None = DESCRIPTION,
) -> str:
    """One VEVENT. `dtstart` is the DTSTART line after the name (':20261020T100000Z', or
    `ny(...)`); `lines` are further content lines, as written in a feed."""
    body = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260901T120000Z", f"DTSTART{dtstart}"]
    if summary is not None:
        body.append(f"SUMMARY:{summary}")
    if description is not None:
        body.append(f"DESCRIPTION:{description}")
    return "\n".join([*body, *lines, "END:VEVENT"])


def feed(*components: str, header: Sequence[str] = ()) -> bytes:
    """A VCALENDAR with these components, CRLF line endings as RFC 5545 wants them."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//calendar feed//EN", *header]
    text = "\n".join([*lines, *components, "END:VCALENDAR"]) + "\n"
    return text.replace("\n", "\r\n").encode()


def weekly_series(*extra: str, uid: str = "alex-series@practice") -> str:
    """Mondays 10:00-10:50 New York, 2026-10-05 to 2026-11-09 (six instances, across the end of
    daylight saving time on 2026-11-01), without the instance of 2026-10-12."""
    return vevent(
        uid,
        ny("20261005T100000"),
        f"DTEND{ny('20261005T105000')}",
        "RRULE:FREQ=WEEKLY;COUNT=6",
        f"EXDATE{ny('20261012T100000')}",
        *extra,
    )


def source(**mapping: object) -> CalendarSource:
    return CalendarSource(
        source_id="practice", kind="ics", location="calendar.ics", mapping=EventMapping(**mapping)
    )


OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)


def read(
    ics: bytes,
    src: CalendarSource | None = None,
    start: datetime = OCTOBER,
    end: datetime = DECEMBER,
    emails: dict[str, str] | None = None,
) -> tuple[list[CalendarSession], list[UnreadableEvent]]:
    sessions, unreadable = read_sessions(ics, src or source(), start, end, emails or {})
    assert_no_phi(sessions, unreadable)
    return sessions, unreadable


def assert_no_phi(sessions: list[CalendarSession], unreadable: list[UnreadableEvent]) -> None:
    """Nothing an event says about a person leaves the reader (every read in this file)."""
    for result in [*sessions, *unreadable]:
        dumped = result.model_dump_json().lower()
        for secret in PHI:
            assert secret.lower() not in dumped, (secret, dumped)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def by_start(sessions: list[CalendarSession]) -> dict[datetime, CalendarSession]:
    return {s.start: s for s in sessions}


# ---------------------------------------------------------------------- series and overrides
def test_a_weekly_series_without_its_exdate_in_utc_across_the_dst_change() -> None:
    sessions, unreadable = read(feed(weekly_series()))
    assert unreadable == []
    assert [s.start for s in sessions] == [
        utc(2026, 10, 5, 14),
        utc(2026, 10, 19, 14),
        utc(2026, 10, 26, 14),  # EDT, UTC-4
        utc(2026, 11, 2, 15),  # EST, UTC-5: 10:00 local all the same
        utc(2026, 11, 9, 15),
    ]
    assert all(s.start.tzinfo is UTC for s in sessions)
    assert {(s.client_id, s.status, s.source_id) for s in sessions} == {
        ("C100", "confirmed", "practice")
    }
    assert len({s.appointment_id for s in sessions}) == 5  # one id per instance


def test_the_week_of_the_dst_change_with_a_vtimezone() -> None:
    week = (utc(2026, 10, 26), utc(2026, 11, 3))
    with_vtimezone = feed(NEW_YORK_VTIMEZONE.format(tzid="America/New_York"), weekly_series())
    sessions, _ = read(with_vtimezone, start=week[0], end=week[1])
    assert [s.start for s in sessions] == [utc(2026, 10, 26, 14), utc(2026, 11, 2, 15)]


def test_a_tzid_defined_only_by_its_vtimezone() -> None:
    """A TZID no zone database knows (Outlook writes such names) is read from its VTIMEZONE."""
    tzid = "Practice Local Time"
    event = vevent(
        "local@practice",
        ny("20261026T100000", tzid),
        f"DTEND{ny('20261026T105000', tzid)}",
        "RRULE:FREQ=WEEKLY;COUNT=2",
    )
    sessions, unreadable = read(feed(NEW_YORK_VTIMEZONE.format(tzid=tzid), event))
    assert unreadable == []
    assert [s.start for s in sessions] == [utc(2026, 10, 26, 14), utc(2026, 11, 2, 15)]


def test_an_unknown_tzid_without_vtimezone_is_reported_not_guessed() -> None:
    bad = vevent("mars@practice", ny("20261020T100000", "Mars/Olympus_Mons"))
    sessions, unreadable = read(feed(bad, vevent("good@practice", ":20261021T150000Z")))
    assert [s.start for s in sessions] == [utc(2026, 10, 21, 15)]
    assert [u.reason for u in unreadable] == [
        "DTSTART names an unknown time zone; skipped with its whole series"
    ]


def test_an_override_that_moves_an_instance_keeps_its_appointment_id() -> None:
    before, _ = read(feed(weekly_series()))
    instance = by_start(before)[utc(2026, 10, 19, 14)]
    moved = vevent(
        "alex-series@practice",
        ny("20261020T110000"),  # Tuesday 11:00 instead of Monday 10:00
        f"DTEND{ny('20261020T115000')}",
        f"RECURRENCE-ID{ny('20261019T100000')}",
        "SEQUENCE:1",
    )
    after, unreadable = read(feed(weekly_series(), moved))
    assert unreadable == []
    assert len(after) == len(before)
    assert utc(2026, 10, 19, 14) not in by_start(after)
    session = by_start(after)[utc(2026, 10, 20, 15)]
    assert session.appointment_id == instance.appointment_id
    assert session.client_id == "C100"
    # The other instances are untouched.
    assert {s.appointment_id for s in after} == {s.appointment_id for s in before}


def test_what_recurring_ical_events_reports_about_instances() -> None:
    """Why the reader asks the occurrence, not its component, which instance it is: the library
    gives every occurrence's component a RECURRENCE-ID, a single event's too (its DTSTART), so
    the component alone cannot tell "instance of a series" from "an event that was moved"."""
    override = vevent(
        "alex-series@practice",
        ny("20261020T110000"),
        f"RECURRENCE-ID{ny('20261019T100000')}",
    )
    ics = feed(weekly_series(), override, vevent("one-off@practice", ":20261021T150000Z"))
    found = recurring_ical_events.of(icalendar.Calendar.from_ical(ics)).between(OCTOBER, DECEMBER)
    recurrence_ids = {(str(c["UID"]), c["DTSTART"].dt): c["RECURRENCE-ID"].dt for c in found}
    assert recurrence_ids[("one-off@practice", utc(2026, 10, 21, 15))] == utc(2026, 10, 21, 15)
    new_york = ZoneInfo("America/New_York")
    series = {
        start: rid for (uid, start), rid in recurrence_ids.items() if uid != "one-off@practice"
    }
    assert series[datetime(2026, 10, 26, 10, tzinfo=new_york)] == datetime(
        2026, 10, 26, 10, tzinfo=new_york
    )  # a generated instance: its start
    assert series[datetime(2026, 10, 20, 11, tzinfo=new_york)] == datetime(
        2026, 10, 19, 10, tzinfo=new_york
    )  # the override: the start it replaces


def test_a_this_and_future_override_moves_the_rest_keeping_their_ids() -> None:
    before, _ = read(feed(weekly_series()))
    later = vevent(
        "alex-series@practice",
        ny("20261019T110000"),
        f"DTEND{ny('20261019T115000')}",
        f"RECURRENCE-ID;RANGE=THISANDFUTURE{ny('20261019T100000')}",
        "SEQUENCE:1",
    )
    after, _ = read(feed(weekly_series(), later))
    assert [s.appointment_id for s in after] == [s.appointment_id for s in before]
    assert [s.start - b.start for s, b in zip(after, before, strict=True)] == [
        timedelta(0),
        *[timedelta(hours=1)] * 4,
    ]


def test_an_override_in_utc_names_the_same_instance() -> None:
    """RECURRENCE-ID may be written in UTC while the series is local: the same instance."""
    before, _ = read(feed(weekly_series()))
    moved = vevent(
        "alex-series@practice",
        ny("20261102T120000"),
        "RECURRENCE-ID:20261102T150000Z",
    )
    after, _ = read(feed(weekly_series(), moved))
    assert (
        by_start(after)[utc(2026, 11, 2, 17)].appointment_id
        == by_start(before)[utc(2026, 11, 2, 15)].appointment_id
    )


def test_an_override_that_cancels_an_instance() -> None:
    before, _ = read(feed(weekly_series()))
    cancelled = vevent(
        "alex-series@practice",
        ny("20261026T100000"),
        f"DTEND{ny('20261026T105000')}",
        f"RECURRENCE-ID{ny('20261026T100000')}",
        "STATUS:CANCELLED",
        "LAST-MODIFIED:20261025T220000Z",
        "SEQUENCE:2",
    )
    after, _ = read(feed(weekly_series(), cancelled))
    session = by_start(after)[utc(2026, 10, 26, 14)]
    assert session.status == "cancelled"
    assert session.modified_at == utc(2026, 10, 25, 22)
    assert session.appointment_id == by_start(before)[utc(2026, 10, 26, 14)].appointment_id
    assert [s.status for s in after].count("cancelled") == 1


def test_an_override_that_leaves_the_client_out_is_still_the_masters_session() -> None:
    """Some calendars write only what changed: a cancellation must not become unreadable."""
    minimal = vevent(
        "alex-series@practice",
        ny("20261026T100000"),
        f"RECURRENCE-ID{ny('20261026T100000')}",
        "STATUS:CANCELLED",
        summary=None,
        description=None,
    )
    sessions, unreadable = read(feed(weekly_series(), minimal), source(therapist_id="T100"))
    assert unreadable == []
    session = by_start(sessions)[utc(2026, 10, 26, 14)]
    assert (session.client_id, session.therapist_id, session.status) == (
        "C100",
        "T100",
        "cancelled",
    )


def test_dtstamp_is_not_taken_for_when_an_event_changed() -> None:
    """In an export DTSTAMP is when the export was written: taken as the time of a
    cancellation, it would make every cancellation look late."""
    sessions, _ = read(feed(vevent("one@practice", ":20261020T150000Z")))
    assert "DTSTAMP" in feed(vevent("one@practice", ":20261020T150000Z")).decode()
    assert sessions[0].modified_at is None


def test_a_single_event_keeps_its_appointment_id_when_moved() -> None:
    first, _ = read(feed(vevent("one-off@practice", ":20261020T150000Z")))
    moved, _ = read(feed(vevent("one-off@practice", ":20261022T180000Z", "SEQUENCE:1")))
    assert [s.start for s in moved] == [utc(2026, 10, 22, 18)]
    assert moved[0].appointment_id == first[0].appointment_id


def test_appointment_ids_are_stable_across_reads_and_sources() -> None:
    ics = feed(weekly_series(), vevent("one-off@practice", ":20261020T150000Z"))
    first, _ = read(ics)
    second, _ = read(ics)
    assert [s.appointment_id for s in first] == [s.appointment_id for s in second]
    assert len({s.appointment_id for s in first}) == len(first) == 6
    # The same UID in another source is another appointment.
    other = source().model_copy(update={"source_id": "other"})
    elsewhere, _ = read(ics, other)
    assert not {s.appointment_id for s in first} & {s.appointment_id for s in elsewhere}
    assert all(s.appointment_id.startswith("cal.practice.") for s in first)


def test_the_window_holds_sessions_that_start_in_it() -> None:
    """[start, end): a session that began before the window and still runs is not in it."""
    event = vevent("one@practice", ":20261020T150000Z", "DTEND:20261020T155000Z")
    assert read(feed(event), start=utc(2026, 10, 20, 15), end=utc(2026, 10, 20, 16))[0]
    assert not read(feed(event), start=utc(2026, 10, 20, 15, 10), end=utc(2026, 10, 21))[0]
    assert not read(feed(event), start=utc(2026, 10, 20), end=utc(2026, 10, 20, 15))[0]
    with pytest.raises(ValueError, match="aware"):
        read_sessions(feed(event), source(), datetime(2026, 10, 1), DECEMBER, {})
    with pytest.raises(ValueError, match="before"):
        read_sessions(feed(event), source(), DECEMBER, OCTOBER, {})


# ---------------------------------------------------------------------- zones
def test_floating_times_are_in_the_sources_zone() -> None:
    berlin = source().model_copy(update={"floating_time_zone": "Europe/Berlin"})
    ics = feed(vevent("floating@practice", ":20261020T100000", "DTEND:20261020T105000"))
    sessions, _ = read(ics, berlin)
    assert [s.start for s in sessions] == [utc(2026, 10, 20, 8)]  # CEST, UTC+2
    # The window is matched against the placed time, not the wall clock read as UTC.
    assert read(ics, berlin, start=utc(2026, 10, 20, 7, 30), end=utc(2026, 10, 20, 9))[0]
    assert not read(ics, berlin, start=utc(2026, 10, 20, 9), end=utc(2026, 10, 20, 11))[0]
    # Without a zone of its own the source's default is UTC.
    assert [s.start for s in read(ics)[0]] == [utc(2026, 10, 20, 10)]


def test_an_unknown_floating_zone_is_a_feed_error() -> None:
    bad = source().model_copy(update={"floating_time_zone": "Nowhere/Land"})
    with pytest.raises(FeedError, match="floating_time_zone"):
        read_sessions(feed(), bad, OCTOBER, DECEMBER, {})


def test_google_exports_with_x_wr_timezone() -> None:
    """Google writes UTC times and the calendar's zone in X-WR-TIMEZONE: a weekly 10:00
    session follows New York's wall clock across the DST change, not UTC's."""
    event = vevent(
        "google@practice", ":20261026T140000Z", "DTEND:20261026T145000Z", "RRULE:FREQ=WEEKLY"
    )
    ics = feed(event, header=["X-WR-TIMEZONE:America/New_York"])
    sessions, _ = read(ics, start=utc(2026, 10, 25), end=utc(2026, 11, 3))
    assert [s.start for s in sessions] == [utc(2026, 10, 26, 14), utc(2026, 11, 2, 15)]
    with pytest.raises(FeedError, match="X-WR-TIMEZONE"):
        read_sessions(
            feed(event, header=["X-WR-TIMEZONE:Nowhere/Land"]), source(), OCTOBER, DECEMBER, {}
        )


def test_all_day_events_are_skipped_silently() -> None:
    ics = feed(
        vevent("holiday@practice", ";VALUE=DATE:20261020", "DTEND;VALUE=DATE:20261021"),
        vevent("retreat@practice", ";VALUE=DATE:20261005", "RRULE:FREQ=WEEKLY;COUNT=4"),
        vevent("timed@practice", ":20261020T150000Z"),
    )
    sessions, unreadable = read(ics)
    assert [s.start for s in sessions] == [utc(2026, 10, 20, 15)]
    assert unreadable == []


# ---------------------------------------------------------------------- the event mapping
def hour(n: int) -> str:
    """A DTSTART tail at n o'clock UTC on 2026-10-20: events in a test sort by it."""
    return f":20261020T{n:02d}0000Z"


def test_clients_and_therapists_by_token_property_attendee_and_owner() -> None:
    ics = feed(
        vevent("1@p", hour(8), description="Notes about Alex. client:C101"),
        vevent("2@p", hour(9), summary="Alex Smith CLIENT:c102 Therapist:T200", description=None),
        vevent("3@p", hour(10), "X-CLIENT-ID:C103", "X-THERAPIST-ID:T300", description="Alex"),
        vevent("4@p", hour(11), f"ATTENDEE;CN=Alex Smith:MAILTO:{EMAIL}", description="Alex"),
        vevent("5@p", hour(12), description="Alex Smith, lunch"),
        vevent("6@p", hour(13), description="Alex and partner: client:C106 client:C107"),
        vevent("7@p", hour(14), summary="client:C108 (Alex)", description="client:C108."),
        vevent("8@p", hour(15), "X-CLIENT-ID:C109", description="client:C110"),
    )
    emails = {EMAIL.lower(): "C104"}
    sessions, unreadable = read(ics, source(therapist_id="T100"), emails=emails)
    assert [(s.client_id, s.therapist_id) for s in sessions] == [
        ("C101", "T100"),  # the calendar's owner
        ("c102", "T200"),  # the token in any case; a named therapist wins over the owner
        ("C103", "T300"),
        ("C104", "T100"),  # the attendee's email, in any case
        ("C108", "T100"),  # named twice; a full stop ends the sentence, not the id
        ("C110", "T100"),  # the token wins over the property
    ]
    assert [(u.event.split(" (")[0], u.reason) for u in unreadable] == [
        ("event 5", "maps to no client"),
        ("event 6", "names more than one client"),
    ]
    assert unreadable[0].event.endswith(" at 2026-10-20 12:00 UTC")

    # Without the attendee rule, or without an owner, those sessions read differently.
    sessions, unreadable = read(
        ics, source(client_by_attendee_email=False), emails={EMAIL.lower(): "C104"}
    )
    assert "C104" not in {s.client_id for s in sessions}
    assert [u.reason for u in unreadable].count("maps to no client") == 2
    assert {s.therapist_id for s in sessions} == {None, "T200", "T300"}


def test_an_email_several_clients_share_names_none_of_them() -> None:
    """A family address on file for two clients: the event is reported, never mapped to one
    of them at random; a token in the event still names its client."""
    shared = "family@example.org"
    ics = feed(
        vevent("1@p", hour(8), f"ATTENDEE:mailto:{shared.upper()}", description="Alex"),
        vevent("2@p", hour(9), f"ATTENDEE:mailto:{shared}", description="client:C102"),
    )
    emails, shared_emails = {"other@example.org": "C3"}, frozenset({shared})
    sessions, unreadable = read_sessions(ics, source(), OCTOBER, DECEMBER, emails, shared_emails)
    assert [s.client_id for s in sessions] == ["C102"]
    assert [u.reason for u in unreadable] == ["an attendee's email belongs to several clients"]
    assert unreadable[0].appointment_id is not None  # seen: a case for it is not cancelled


def test_a_custom_mapping_of_tokens_and_properties() -> None:
    ics = feed(
        vevent("1@p", hour(8), description="pt#P-9 dr#D1"),
        vevent("2@p", hour(9), "X-PATIENT:P.10", "X-CLIENT-ID:ignored", description=None),
        vevent("3@p", hour(10), "X-PATIENT:not an id!", description=None),
    )
    mapping = source(
        client_token="pt#",
        therapist_token="dr#",
        client_property="X-PATIENT",
        therapist_property=None,
    )
    sessions, unreadable = read(ics, mapping)
    assert [(s.client_id, s.therapist_id) for s in sessions] == [("P-9", "D1"), ("P.10", None)]
    assert [u.reason for u in unreadable] == ["maps to no client"]


def test_no_show_and_check_in_markers() -> None:
    ics = feed(
        vevent("1@p", hour(8), "CATEGORIES:Therapy,no show", "CATEGORIES:Billing"),
        vevent("2@p", hour(9), "CATEGORIES:Therapy", "CATEGORIES:Billing,NoShow"),
        vevent("3@p", hour(10), "X-NO-SHOW:yes"),
        vevent("4@p", hour(11), "CATEGORIES:Arrived"),
        vevent("5@p", hour(12), "X-CHECKED-IN:1"),
        vevent("6@p", hour(13), "CATEGORIES:Therapy", "X-NO-SHOW:FALSE", "X-CHECKED-IN:no"),
        vevent("7@p", hour(14), "X-NO-SHOW;VALUE=BOOLEAN:TRUE"),
    )
    sessions, _ = read(ics)
    assert [(s.no_show, s.checked_in) for s in sessions] == [
        (True, False),
        (True, False),
        (True, False),
        (False, True),
        (False, True),
        (False, False),
        (True, False),
    ]
    custom = source(no_show_categories=["Missed"], no_show_property="X-MISSED")
    ics = feed(
        vevent("1@p", hour(8), "CATEGORIES:NO-SHOW", "X-NO-SHOW:TRUE"),
        vevent("2@p", hour(9), "X-MISSED:TRUE"),
        vevent("3@p", hour(10), "CATEGORIES:missed"),
    )
    assert [s.no_show for s in read(ics, custom)[0]] == [False, True, True]


# ---------------------------------------------------------------------- bad events, bad feeds
def test_one_malformed_event_never_stops_the_rest() -> None:
    good = weekly_series()
    ics = feed(
        vevent("bad-start@alex", ":next tuesday"),
        good,
        vevent("bad-rule@alex", ":20261020T150000Z", "RRULE:FREQ=WEEKLY;BYDAY=XX"),
        vevent("loops@alex", ":20261020T150000Z", "RRULE:FREQ=WEEKLY;INTERVAL=0"),
        vevent("minutely@alex", ":20200101T000000Z", "RRULE:FREQ=MINUTELY"),
        vevent("bad-setpos@alex", ":20261020T150000Z", "RRULE:FREQ=WEEKLY;BYSETPOS=0"),
        vevent(
            "bad-period@alex",
            ":20261020T150000Z",
            "RDATE;VALUE=PERIOD:20261027T150000Z/20261019T150000Z",
        ),
        "BEGIN:VEVENT\nDTSTART:20261020T150000Z\nSUMMARY:Alex Smith\nEND:VEVENT",
        vevent("no-start@alex", ":20261020T150000Z").replace("DTSTART:20261020T150000Z\n", ""),
        vevent("one-off@practice", ":20261021T150000Z"),
    )
    sessions, unreadable = read(ics)
    assert len(sessions) == 6  # the series' five and the one-off
    assert [(u.event.split(" (")[0], u.reason) for u in unreadable] == [
        ("event 1", "unreadable DTSTART; skipped with its whole series"),
        ("event 3", "unreadable RRULE; skipped with its whole series"),
        ("event 4", "unreadable RRULE (INTERVAL below 1); skipped with its whole series"),
        (
            "event 5",
            "RRULE repeats MINUTELY (sessions repeat daily at most); skipped with its whole series",
        ),
        ("event 6", "cannot be expanded (BadRuleStringFormat)"),
        ("event 7", "cannot be expanded (PeriodEndBeforeStart)"),
        ("event 8", "has no UID"),
        ("event 9", "has no DTSTART; skipped with its whole series"),
    ]
    for u in unreadable:
        assert "alex" not in u.model_dump_json().lower()
    assert unreadable[0].event.startswith("event 1 (UID hash ")
    assert unreadable[6].event == "event 8 (no UID)"


def test_a_broken_property_that_is_not_a_time_does_not_lose_the_session() -> None:
    sessions, unreadable = read(
        feed(vevent("one@practice", ":20261020T150000Z", "LAST-MODIFIED:yesterday"))
    )
    assert unreadable == []
    assert sessions[0].modified_at is None  # not known (DTSTAMP is not when it changed)


def test_a_broken_override_skips_its_series_rather_than_guess_the_time() -> None:
    broken = vevent("alex-series@practice", ":soon", f"RECURRENCE-ID{ny('20261019T100000')}")
    sessions, unreadable = read(feed(weekly_series(), broken, vevent("x@p", ":20261021T150000Z")))
    assert [s.start for s in sessions] == [utc(2026, 10, 21, 15)]
    assert [u.event.split(" (")[0] for u in unreadable] == ["event 2"]


@pytest.mark.parametrize(
    "content",
    [
        b"Alex Smith, 555-0100, intake notes",
        b"<html><body>Sign in, Alex Smith</body></html>",
        b"BEGIN:VCALENDAR\r\nAlex Smith intake notes\r\nEND:VCALENDAR\r\n",
        b"BEGIN:VEVENT\r\nUID:x\r\nSUMMARY:Alex Smith\r\nEND:VEVENT\r\n",
        b"",
        b"\xff\xfeAlex Smith",
    ],
)
def test_a_feed_that_does_not_parse_raises_without_quoting_it(content: bytes) -> None:
    with pytest.raises(FeedError) as caught:
        read_sessions(content, source(), OCTOBER, DECEMBER, {})
    message = str(caught.value)
    assert "\n" not in message
    assert "Alex" not in message and "555" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_two_calendars_in_one_file_are_read_as_one() -> None:
    ics = feed(vevent("a@p", ":20261020T150000Z")) + feed(vevent("b@p", ":20261021T150000Z"))
    assert len(read(ics)[0]) == 2


# ---------------------------------------------------------------------- fetching
FEED = feed(vevent("one@practice", ":20261020T150000Z"))


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/private-abc/basic.ics"):
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(FEED)))
            self.end_headers()
            self.wfile.write(FEED)
        elif self.path.startswith("/old"):
            self.send_response(302)
            self.send_header("Location", "/private-abc/basic.ics")
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A tiny HTTP server on 127.0.0.1: its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def test_fetch_a_file_by_path_and_by_url(tmp_path: Path) -> None:
    path = tmp_path / "practice calendar.ics"
    path.write_bytes(FEED)
    assert await fetch_ics(str(path)) == FEED
    assert await fetch_ics(path.as_uri()) == FEED
    with pytest.raises(FeedError, match="no feed file at"):
        await fetch_ics(str(tmp_path / "missing.ics"))
    with pytest.raises(FeedError, match="directory"):
        await fetch_ics(str(tmp_path))


async def test_fetch_over_http_following_redirects(server: str) -> None:
    assert await fetch_ics(f"{server}/private-abc/basic.ics?token=s3cret") == FEED
    assert await fetch_ics(f"{server}/old/feed.ics") == FEED


async def test_an_http_error_names_the_host_but_never_the_path_or_query(server: str) -> None:
    with pytest.raises(FeedError) as caught:
        await fetch_ics(f"{server}/private-xyz/basic.ics?token=s3cret&user=alex")
    assert str(caught.value) == f"HTTP 404 from {server}"
    assert caught.value.__cause__ is None


async def test_webcal_is_https_and_unreachable_hosts_are_one_line(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    # The test server speaks plain HTTP, so an https attempt fails: proof it was https.
    with pytest.raises(FeedError) as caught:
        await fetch_ics(f"webcal://127.0.0.1:{port}/private-abc/basic.ics?token=s3cret", 5)
    assert str(caught.value).startswith(f"cannot fetch the feed from https://127.0.0.1:{port} (")
    assert "s3cret" not in str(caught.value) and "private" not in str(caught.value)

    closed = _closed_port()
    with pytest.raises(FeedError) as caught:
        await fetch_ics(f"https://user:pw@127.0.0.1:{closed}/cal.ics?token=s3cret", 5)
    assert (
        str(caught.value) == f"cannot fetch the feed from https://127.0.0.1:{closed} (ConnectError)"
    )

    with pytest.raises(FeedError, match="unsupported"):
        await fetch_ics("ftp://example.org/cal.ics")


async def test_a_server_that_never_answers_times_out() -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        with pytest.raises(FeedError) as caught:
            await fetch_ics(f"http://127.0.0.1:{port}/cal.ics?token=s3cret", timeout=0.3)
        assert str(caught.value) == f"no complete answer from http://127.0.0.1:{port} within 0.3 s"
    finally:
        release.set()
        listener.close()
        await listener.wait_closed()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
