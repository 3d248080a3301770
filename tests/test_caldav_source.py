"""`fetch_caldav` against a real Radicale server: what comes back, and how it fails.

The series crosses the end of daylight saving time in New York (2026-11-01); expanding the
fetched (unexpanded) document on the client must give 10:00 local on both sides. That is what
the sweep relies on, whatever the server's own expansion does (the project's notes report
Radicale's wrong across DST changes; for this series, with its VTIMEZONE, Radicale 3.9 happened
to expand it right, so nothing here depends on the server being wrong).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import icalendar
import pytest
import recurring_ical_events

from calendars.caldav_source import CalDavError, _merge, fetch_caldav, server_origin

# radicale_fixture and radicale_with_auth_fixture are the fixtures `radicale` and
# `radicale_with_auth`: imported for pytest, which finds them by those names (hence the noqa).
from tests.calendar_data import NEW_YORK_VTIMEZONE
from tests.radicale_server import (  # noqa: F401
    RadicaleServer,
    delete_event,
    free_port,
    make_calendar,
    put_event,
    radicale_fixture,
    radicale_with_auth_fixture,
)

WINDOW_START = datetime(2026, 10, 15, tzinfo=UTC)
WINDOW_END = datetime(2026, 11, 30, tzinfo=UTC)

SERIES_UID = "weekly-series@practice.test"
SINGLE_UID = "single-event@practice.test"
OLD_SERIES_UID = "old-series@practice.test"
LATER_UID = "next-spring@practice.test"
PRIVATE_TEXT = "Private-summary-do-not-log"

NEW_YORK = NEW_YORK_VTIMEZONE.format(tzid="America/New_York") + "\n"


def vcalendar(*events: str) -> str:
    """A calendar object resource as a client would PUT it: its own copy of the VTIMEZONE."""
    body = "".join(events)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Test//Practice//EN\n{NEW_YORK}{body}"
    return (text + "END:VCALENDAR\n").replace("\n", "\r\n")


def vevent(uid: str, start: str, *extra: str, summary: str = PRIVATE_TEXT) -> str:
    """A 50-minute VEVENT at `start` (local New York time, 'YYYYMMDDTHHMMSS')."""
    end = f"{start[:-4]}5000"  # same hour, minute 50
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260901T120000Z",
        f"DTSTART;TZID=America/New_York:{start}",
        f"DTEND;TZID=America/New_York:{end}",
        f"SUMMARY:{summary}",
        *extra,
        "END:VEVENT",
    ]
    return "\n".join(lines) + "\n"


NY_2026_11_09 = "TZID=America/New_York:20261109T100000"  # the fourth session of SERIES

# Mondays 10:00 New York from 2026-10-19, six times: two before the DST change, four after; the
# 2026-11-09 session moved to Tuesday 2026-11-10 11:00 by an override in the same resource.
SERIES = vcalendar(
    vevent(SERIES_UID, "20261019T100000", "RRULE:FREQ=WEEKLY;COUNT=6"),
    vevent(
        SERIES_UID,
        "20261110T110000",
        f"RECURRENCE-ID;{NY_2026_11_09}",
        summary="Moved session",
    ),
)
SINGLE = vcalendar(vevent(SINGLE_UID, "20261028T090000"))
# Started long before the window, still recurring in it: the server must still return it.
OLD_SERIES = vcalendar(vevent(OLD_SERIES_UID, "20260105T080000", "RRULE:FREQ=MONTHLY;BYDAY=1TU"))
# Wholly outside the window.
LATER = vcalendar(vevent(LATER_UID, "20270301T100000"))


def parse(document: bytes) -> icalendar.Calendar:
    """The fetched document, parsed as any iCalendar consumer would."""
    calendar = icalendar.Calendar.from_ical(document)
    assert isinstance(calendar, icalendar.Calendar)
    return calendar


def utc_starts(calendar: icalendar.Calendar, uid: str) -> list[datetime]:
    """Client-side expansion: the UTC start of each occurrence of `uid` in the window."""
    occurrences = recurring_ical_events.of(calendar).between(WINDOW_START, WINDOW_END)
    starts = [o["DTSTART"].dt for o in occurrences if str(o["UID"]) == uid]
    return sorted(start.astimezone(UTC) for start in starts)


async def fetch(server: RadicaleServer, url: str, password: str | None = None) -> bytes:
    """fetch_caldav over the window, as the server's user."""
    return await fetch_caldav(
        url, server.username, password or server.password, WINDOW_START, WINDOW_END, timeout=10
    )


def assert_safe_message(exc: CalDavError, *secrets: str) -> None:
    """One line, and nothing of the password, the URL's path or query, or an event."""
    message = str(exc)
    assert "\n" not in message
    for secret in (*secrets, PRIVATE_TEXT, "VEVENT", "BEGIN:", SERIES_UID):
        assert secret not in message, (secret, message)
    assert exc.__cause__ is None and exc.__suppress_context__  # no chained URL/body text


# ---------------------------------------------------------------------- what comes back
@pytest.fixture(scope="module")
async def practice_calendar(radicale: RadicaleServer) -> AsyncIterator[str]:
    """A calendar with the DST-crossing series (and its override), a single event, a series
    from January, and an event next spring; shared by the read-only tests of this module."""
    url = await make_calendar(radicale, "practice")
    for ics in (SERIES, SINGLE, OLD_SERIES, LATER):
        await put_event(radicale, url, ics)
    yield url


async def test_one_document_with_every_event_its_overrides_and_the_timezone(
    radicale: RadicaleServer, practice_calendar: str
) -> None:
    calendar = parse(await fetch(radicale, practice_calendar))

    assert str(calendar["VERSION"]) == "2.0" and calendar["PRODID"]
    events = calendar.walk("VEVENT")
    uids = {str(event["UID"]) for event in events}
    assert uids == {SERIES_UID, SINGLE_UID, OLD_SERIES_UID}  # next spring's is not in the window
    series = [event for event in events if str(event["UID"]) == SERIES_UID]
    assert len(series) == 2  # the master and its override, unexpanded
    master = next(event for event in series if "RECURRENCE-ID" not in event)
    override = next(event for event in series if "RECURRENCE-ID" in event)
    assert "RRULE" in master
    assert override["RECURRENCE-ID"].dt == datetime(2026, 11, 9, 15, 0, tzinfo=UTC)
    # Every resource carried its own copy of the VTIMEZONE; the document has it once.
    timezones = calendar.walk("VTIMEZONE")
    assert [str(tz["TZID"]) for tz in timezones] == ["America/New_York"]


async def test_client_side_expansion_keeps_ten_oclock_local_across_the_dst_change(
    radicale: RadicaleServer, practice_calendar: str
) -> None:
    calendar = parse(await fetch(radicale, practice_calendar))

    # 10:00 EDT (UTC-4) is 14:00 UTC before 2026-11-01; 10:00 EST (UTC-5) is 15:00 UTC after.
    assert utc_starts(calendar, SERIES_UID) == [
        datetime(2026, 10, 19, 14, 0, tzinfo=UTC),
        datetime(2026, 10, 26, 14, 0, tzinfo=UTC),
        datetime(2026, 11, 2, 15, 0, tzinfo=UTC),
        datetime(2026, 11, 10, 16, 0, tzinfo=UTC),  # the override: Tuesday 11:00 EST
        datetime(2026, 11, 16, 15, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 15, 0, tzinfo=UTC),
    ]
    assert utc_starts(calendar, SINGLE_UID) == [datetime(2026, 10, 28, 13, 0, tzinfo=UTC)]
    assert utc_starts(calendar, OLD_SERIES_UID) == [
        datetime(2026, 11, 3, 13, 0, tzinfo=UTC),  # first Tuesday of November, 08:00 EST
    ]


async def test_an_override_moving_a_session_out_of_the_window_comes_with_its_series(
    radicale: RadicaleServer,
) -> None:
    url = await make_calendar(radicale)
    moved_out = vcalendar(
        vevent(SERIES_UID, "20261019T100000", "RRULE:FREQ=WEEKLY;COUNT=6"),
        vevent(SERIES_UID, "20261210T100000", f"RECURRENCE-ID;{NY_2026_11_09}"),
    )
    await put_event(radicale, url, moved_out)
    calendar = parse(await fetch(radicale, url))

    assert len(calendar.walk("VEVENT")) == 2
    # Without the override the expansion would show a session on 2026-11-09 that is not there.
    assert datetime(2026, 11, 9, 15, 0, tzinfo=UTC) not in utc_starts(calendar, SERIES_UID)
    assert len(utc_starts(calendar, SERIES_UID)) == 5


async def test_an_edit_is_seen_and_a_deleted_event_is_gone(radicale: RadicaleServer) -> None:
    url = await make_calendar(radicale)
    await put_event(radicale, url, SERIES)
    await put_event(radicale, url, SINGLE)
    before = parse(await fetch(radicale, url))
    assert utc_starts(before, SINGLE_UID) == [datetime(2026, 10, 28, 13, 0, tzinfo=UTC)]
    assert len(utc_starts(before, SERIES_UID)) == 6

    # Moved an hour and a day later: saved again under the same UID, so the same resource.
    await put_event(radicale, url, vcalendar(vevent(SINGLE_UID, "20261029T100000")))
    await delete_event(radicale, url, SERIES_UID)

    after = parse(await fetch(radicale, url))
    assert {str(event["UID"]) for event in after.walk("VEVENT")} == {SINGLE_UID}
    assert utc_starts(after, SINGLE_UID) == [datetime(2026, 10, 29, 14, 0, tzinfo=UTC)]


async def test_an_empty_calendar_is_an_empty_document(radicale: RadicaleServer) -> None:
    calendar = parse(await fetch(radicale, await make_calendar(radicale)))
    assert calendar.walk("VEVENT") == [] and calendar.walk("VTIMEZONE") == []


# ---------------------------------------------------------------------- how it fails
async def test_an_unreachable_server_is_a_caldav_error() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/therapist/practice/?token=query-secret"
    with pytest.raises(CalDavError) as caught:
        await fetch_caldav(url, "therapist", "pw-secret-1", WINDOW_START, WINDOW_END, timeout=5)
    assert str(caught.value) == f"CalDAV server http://127.0.0.1:{port} unreachable"
    assert_safe_message(caught.value, "pw-secret-1", "query-secret", "practice")


async def test_a_wrong_password_is_a_caldav_error_naming_401(
    radicale_with_auth: RadicaleServer,
) -> None:
    server = radicale_with_auth
    url = await make_calendar(server)
    await put_event(server, url, SERIES)
    assert SERIES_UID.encode() in await fetch(server, url)  # the right password reads it

    wrong = "wrong-password-42"
    with pytest.raises(CalDavError) as caught:
        await fetch(server, f"{url}?token=query-secret", password=wrong)
    assert caught.value.status == 401
    assert str(caught.value) == (
        f"CalDAV server {server.base_url} refused the login (HTTP 401): wrong username or password"
    )
    path = url.removeprefix(server.base_url)
    assert_safe_message(caught.value, wrong, server.password, "query-secret", path)


async def test_no_calendar_at_the_url_is_a_caldav_error_naming_404(
    radicale: RadicaleServer,
) -> None:
    with pytest.raises(CalDavError) as caught:
        await fetch(radicale, radicale.calendar_url("no-such-calendar"))
    assert caught.value.status == 404 and "404" in str(caught.value)
    assert_safe_message(caught.value, radicale.password, "no-such-calendar")


async def test_a_server_that_never_answers_is_a_caldav_error_after_the_timeout() -> None:
    release = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(CalDavError) as caught:
            await fetch_caldav(
                f"http://127.0.0.1:{port}/cal/", "u", "pw-secret-2", WINDOW_START, WINDOW_END, 0.5
            )
        assert loop.time() - began < 3
        assert str(caught.value) == (
            f"CalDAV server http://127.0.0.1:{port} unreachable: no answer within 0.5 s"
        )
        assert_safe_message(caught.value, "pw-secret-2")
    finally:
        release.set()
        server.close()
        await server.wait_closed()


def test_the_origin_is_all_a_message_shows_of_a_url() -> None:
    assert server_origin("https://ana:pw@Cal.Example.com/dav/ana/work/?t=1") == (
        "https://cal.example.com:443"
    )
    assert server_origin("http://[::1]/x/") == "http://[::1]:80"
    with pytest.raises(CalDavError, match="http:// or https://"):
        server_origin("file:///etc/passwd")


async def test_a_naive_window_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await fetch_caldav("http://127.0.0.1:1/x/", None, None, datetime(2026, 1, 1), WINDOW_END)


def test_a_calendar_object_that_is_not_icalendar_is_left_out_and_named_not_quoted() -> None:
    good = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:good@x\r\n"
        "DTSTAMP:20260101T000000Z\r\nDTSTART:20261201T150000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    bad = "BEGIN:VCALENDAR\r\nAlex Kim, 555-0101: not a calendar at all"
    document = _merge(
        [("/u/cal/good.ics", good), ("/u/cal/alex-kim.ics", bad)], "http://127.0.0.1:1"
    )

    assert b"good@x" in document.ics
    [skipped] = document.unreadable
    assert skipped.startswith("calendar object 2 (id hash ") and "not iCalendar" in skipped
    assert "Alex" not in skipped and "alex-kim" not in skipped
