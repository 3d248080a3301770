"""Hostile events in a calendar feed: dates at the year 1 and 9999, durations of millions of
days, huge RRULE counts and rules no day ever matches, NUL and control characters, time zones
that do not exist (or name a folder of the zone database). Each is reported and skipped, by
its position and a hash of its UID, and every other event is still read, quickly."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from calendars.feed import read_sessions
from models.calendar import CalendarSource
from tests.hostile import FAST, NASTY_CHARACTERS
from tests.test_calendar_feed import feed, vevent

SOURCE = CalendarSource(
    source_id="front", kind="ics", location="/feed.ics", floating_time_zone="America/New_York"
)
WINDOW = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
GOOD = vevent(
    "good@practice",
    ":20261020T140000Z",
    "DURATION:PT50M",
    summary="Weekly session",
    description="client:C100",
)
SECRET = "Zebediah"  # in every hostile event's summary: never in what comes back

STAMPS = [
    "00010101T000000Z",
    "00010101T000000",
    "99991231T235959Z",
    "99991231T235959",
    "20261015T100000Z",
    "20261015T100000",
    "20261015",
    "20260230T100000Z",
    "20261015T250000Z",
    "2026-10-15T10:00:00Z",
    "",
    "x",
]
CLIENT_IDS = ["C100", "C" * 100, "C\x00", "C\x1b"]
TZIDS = ["America/New_York", "Mars/Olympus", "America", "A" * 300, "", "UTC\x00", "../etc"]
RULES = [
    "FREQ=DAILY;COUNT=100000000",
    "FREQ=DAILY;COUNT=999999999999999999999",
    "FREQ=WEEKLY;COUNT=-5",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",  # no day ever matches
    "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=9",
    "FREQ=YEARLY;BYYEARDAY=366;BYMONTH=1",
    "FREQ=DAILY;BYHOUR=" + ",".join(map(str, range(24))),
    "FREQ=SECONDLY",
    "FREQ=DAILY;INTERVAL=0",
    "FREQ=WEEKLY;UNTIL=99991231T235959Z",
    "FREQ=WEEKLY;UNTIL=00010101T000000Z",
    "FREQ=WEEKLY;INTERVAL=999999999",
    "FREQ=FORTNIGHTLY",
    "FREQ=WEEKLY;BYDAY=XX",
    "COUNT=3",
]


@st.composite
def hostile_events(draw: st.DrawFn, number: int) -> str:
    uid = draw(st.sampled_from([f"bad-{number}@x", f"bad-{number}\x00@x", f"{SECRET}@x"]))
    stamp = draw(st.sampled_from(STAMPS))
    if draw(st.booleans()):
        start = f";TZID={draw(st.sampled_from(TZIDS))}:{stamp}"
    elif stamp.isdigit():
        start = f";VALUE=DATE:{stamp}"
    else:
        start = f":{stamp}"
    lines = []
    for _ in range(draw(st.integers(0, 3))):
        lines.append(
            draw(
                st.sampled_from(
                    [
                        "DURATION:P99999999D",
                        "DURATION:P999999999999D",
                        "DURATION:-PT50M",
                        f"DTEND:{draw(st.sampled_from(STAMPS))}",
                        f"RRULE:{draw(st.sampled_from(RULES))}",
                        f"EXDATE:{draw(st.sampled_from(STAMPS))}",
                        f"RDATE:{draw(st.sampled_from(STAMPS))}",
                        f"RECURRENCE-ID:{draw(st.sampled_from(STAMPS))}",
                        f"LAST-MODIFIED:{draw(st.sampled_from(STAMPS))}",
                        "STATUS:CANCELLED",
                        "CATEGORIES:NO-SHOW",
                        "X-CLIENT-ID:" + draw(st.sampled_from(CLIENT_IDS)),
                    ]
                )
            )
        )
    text = SECRET + draw(st.sampled_from([c for c in NASTY_CHARACTERS if c not in "\r\n"]))
    return vevent(uid, start, *lines, summary=text, description=f"client:C100 {text}")


@st.composite
def feeds(draw: st.DrawFn) -> list[str]:
    bad = [draw(hostile_events(n)) for n in range(draw(st.integers(1, 4)))]
    at = draw(st.integers(0, len(bad)))
    return [*bad[:at], GOOD, *bad[at:]]


@FAST
@given(feeds())
@example([GOOD, vevent("x@x", ";TZID=America:20261015T100000", "DURATION:PT50M")])  # found
@example([GOOD, vevent("x@x", ":20261005T100000Z", "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30")])
@example([GOOD, vevent("x@x", ":00010101T100000Z", "RRULE:FREQ=DAILY")])
@example([GOOD, vevent("x@x", ":20261005T100000Z", f"RRULE:{RULES[6]};BYMINUTE=1,2,3")])
@example([GOOD, vevent("x@x", ":99991231T235959Z", "DURATION:PT50M")])
def test_a_hostile_event_is_reported_and_the_others_are_still_read(events: list[str]) -> None:
    began = time.monotonic()
    sessions, unreadable = read_sessions(feed(*events), SOURCE, *WINDOW, {})
    took = time.monotonic() - began
    assert took < 3, f"one read took {took:.1f}s"
    starts = {(s.client_id, s.start) for s in sessions}
    assert ("C100", datetime(2026, 10, 20, 14, tzinfo=UTC)) in starts  # the good one is read
    for session in sessions:
        assert WINDOW[0] <= session.start < WINDOW[1]
        assert session.client_id is None or len(session.client_id) <= 64
    for event in unreadable:
        assert event.reason and event.event.startswith("event ")
    shown = repr(sessions) + repr(unreadable)
    assert SECRET not in shown and "\x00" not in shown
