"""The practice calendar opens, answers and documents cases: the sweep on the time-skipping
server with the real case workflow, a real SQLite store and .ics files written by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from calendars.caldav_source import CalDavDocument
from models.calendar import CalendarSource, SweepReport, moved_appointment_id
from models.case import Resolution, case_id_for
from service.calendar_sweep import CalendarService, read_source
from store.case_store import CaseStore
from tests.calendar_data import vevent, write
from tests.conftest import start_time_skipping
from tests.harness import Harness, harness
from workflows.calendar_sweep import CalendarSweepWorkflow

PHI = ("Alex", "Kim", "alex@example.org", "Session with", "Weekly session")


@dataclass
class Sweeper:
    h: Harness
    calendars: CalendarService
    feed: Path

    async def add(
        self, mode: str, source_id: str = "front-desk", at: datetime | None = None, **extra: object
    ) -> None:
        """Add the source, by default a day ago (a source added now opens nothing before it)."""
        config = {"source_id": source_id, "kind": "ics", "location": str(self.feed), "mode": mode}
        added = at or await self.now() - timedelta(days=1)
        await self.calendars.add({**config, **extra}, None, added)

    async def now(self) -> datetime:
        return await self.h.env.get_current_time()

    async def sweep(self, now: datetime | None = None) -> SweepReport:
        [report] = await self.calendars.sweep(now or await self.now())
        self.h.started += [case_id_for(a) for a in report.opened]
        return report


@pytest.fixture
async def own_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this test's own: a case left mid-outreach by a test (and the
    calendar opens cases late, so outreach starts at once) can leave the shared server unable
    to skip time for the tests after it."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture
async def sweeper(
    own_env: WorkflowEnvironment, sqlite_store: CaseStore, tmp_path: Path
) -> AsyncIterator[Sweeper]:
    async with harness(own_env, sqlite_store) as h:
        settings = h.settings.model_copy(update={"secrets_key_file": str(tmp_path / "secrets.key")})
        yield Sweeper(h, CalendarService(sqlite_store, settings, h.service), tmp_path / "cal.ics")


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


async def test_a_series_with_an_exception_and_cancellations_opens_one_case_once(
    sweeper: Sweeper, sqlite_store: CaseStore
) -> None:
    now = await sweeper.now()
    today = _minute(now) - timedelta(hours=1)  # today's session started an hour ago
    day = timedelta(days=1)
    write(
        sweeper.feed,
        vevent("series-1", today - day, rrule="FREQ=DAILY;COUNT=4", exdates=[today - day]),
        # tomorrow's, cancelled this morning (inside 24 h); the day after's too (outside 24 h)
        vevent(
            "series-1", today + day, recurrence_id=today + day, status="CANCELLED", modified=now
        ),
        vevent(
            "series-1",
            today + 2 * day,
            recurrence_id=today + 2 * day,
            status="CANCELLED",
            modified=now,
        ),
    )
    await sweeper.add("presumed")
    first = await sweeper.sweep()
    again = await sweeper.sweep()

    [opened] = first.opened
    case = await sqlite_store.get_case(case_id_for(opened))
    assert case is not None and case.scheduled_start == today and case.client_id == "C1"
    assert first.opened[opened] == pytest.approx(3600, abs=60)  # opened an hour late
    [late] = first.late_cancellations
    assert late != opened
    assert (again.opened, again.late_cancellations, again.cancellations) == ({}, [], [])
    assert len(await sqlite_store.list_cases()) == 1  # the EXDATE'd instance opened nothing
    notes = await sqlite_store.notes_for_case(case_id_for(opened))
    assert any(n.author == "calendar" and "1h after the session's start" in n.text for n in notes)
    for phi in PHI:
        assert phi not in first.model_dump_json()


async def test_a_check_in_during_the_grace_wait_closes_the_case_silently(
    sweeper: Sweeper,
) -> None:
    now = await sweeper.now()
    start = _minute(now) - timedelta(minutes=5)
    write(sweeper.feed, vevent("single-1", start))
    await sweeper.add("presumed")
    [appointment] = (await sweeper.sweep()).opened
    write(sweeper.feed, vevent("single-1", start, categories=["CHECKED-IN"]))
    second = await sweeper.sweep()
    handle = sweeper.h.client.get_workflow_handle(case_id_for(appointment), result_type=Resolution)
    resolution = await handle.result()
    third = await sweeper.sweep()

    assert second.arrivals == [appointment] and third.arrivals == []
    assert resolution.outcome.value == "attended_late"
    assert sweeper.h.providers.sent == []


async def test_marked_mode_opens_only_no_shows_and_a_moved_session_stops_outreach(
    sweeper: Sweeper,
) -> None:
    now = await sweeper.now()
    start = _minute(now) - timedelta(minutes=10)
    write(
        sweeper.feed,
        vevent("marked-1", start, categories=["NO-SHOW"]),
        vevent("unmarked-1", start, client="C3"),
    )
    await sweeper.add("marked")
    [appointment] = (await sweeper.sweep()).opened
    moved_to = start + timedelta(days=1)
    write(sweeper.feed, vevent("marked-1", moved_to), vevent("unmarked-1", start, client="C3"))
    moved = await sweeper.sweep()
    handle = sweeper.h.client.get_workflow_handle(case_id_for(appointment), result_type=Resolution)
    status = await sweeper.h.status(handle)
    resolution = await sweeper.h.close_as_therapist(handle)

    assert moved.cancellations == [appointment] and moved.opened == {}
    assert status.session_moved_to == moved_to
    assert any("session was moved to" in n.text for n in status.notes)
    assert any("session was moved to" in n.text for n in resolution.notes)
    # A miss of the rescheduled session would open a case of its own.
    assert moved_appointment_id(appointment, moved_to) != appointment


async def test_after_six_hours_of_downtime_the_sweep_catches_up_and_says_how_late(
    sweeper: Sweeper, sqlite_store: CaseStore
) -> None:
    """Swept last at 08:55; the worker was down until 15:00. Meanwhile a session at 09:00 was
    missed, and one for tomorrow was cancelled (no LAST-MODIFIED) at some time unknown."""
    now = await sweeper.now()
    missed_at = _minute(now) - timedelta(hours=6)
    tomorrow = missed_at + timedelta(hours=25)  # 25 h after the last sweep: in good time?
    write(
        sweeper.feed,
        vevent("early-1", missed_at),
        vevent("ancient-1", _minute(now) - timedelta(days=3)),  # past the policy's catch-up
        vevent("tomorrow-1", tomorrow),
    )
    await sweeper.add("presumed")
    before = await sweeper.sweep(missed_at - timedelta(minutes=5))
    write(
        sweeper.feed,
        vevent("early-1", missed_at),
        vevent("ancient-1", _minute(now) - timedelta(days=3)),
        vevent("tomorrow-1", tomorrow, status="CANCELLED"),
    )
    report = await sweeper.sweep()

    assert before.opened == {}
    [(appointment, late)] = report.opened.items()
    assert late == pytest.approx(6 * 3600, abs=60)
    notes = await sqlite_store.notes_for_case(case_id_for(appointment))
    assert any("6h after the session's start" in n.text for n in notes)
    # Cancelled some time in the six hours: dated to the last sweep, so not counted late.
    assert report.late_cancellations == []


async def test_a_source_added_now_opens_no_case_for_the_sessions_before_it(
    sweeper: Sweeper,
) -> None:
    now = await sweeper.now()
    write(sweeper.feed, vevent("last-week-1", _minute(now) - timedelta(hours=3)))
    await sweeper.add("presumed", at=now - timedelta(hours=1))
    assert (await sweeper.sweep()).opened == {}


async def test_one_malformed_event_and_one_unreadable_source_stop_nothing_else(
    sweeper: Sweeper, sqlite_store: CaseStore, tmp_path: Path
) -> None:
    now = await sweeper.now()
    start = _minute(now) - timedelta(minutes=5)
    write(
        sweeper.feed,
        vevent("good-1", start),
        vevent("bad-1", start, rrule="FREQ=SOMETIMES;COUNT=x"),
        vevent("nobody-1", start, client=None),
    )
    await sweeper.add("presumed")
    gone = {"source_id": "old-export", "kind": "ics", "location": str(tmp_path / "none.ics")}
    await sweeper.calendars.add(gone, None, now)
    reports = {r.source_id: r for r in await sweeper.calendars.sweep(now)}
    sweeper.h.started += [case_id_for(a) for a in reports["front-desk"].opened]

    good = reports["front-desk"]
    assert good.read_ok and len(good.opened) == 1 and len(good.skipped) == 2
    assert not reports["old-export"].read_ok and reports["old-export"].error
    rows = {r.source.source_id: r for r in await sqlite_store.list_sources()}
    assert rows["front-desk"].last_read_at == now and rows["front-desk"].last_error is None
    assert rows["old-export"].last_read_at is None and rows["old-export"].last_error
    for phi in (*PHI, "bad-1", "nobody-1", "good-1"):
        assert phi not in good.model_dump_json()


async def test_the_week_of_a_dst_change_opens_each_session_at_its_local_time(
    sweeper: Sweeper, sqlite_store: CaseStore
) -> None:
    # 10:00 in New York every Monday: 15:00 UTC before 14 March 2027, 14:00 UTC after.
    write(
        sweeper.feed,
        vevent(
            "weekly-ny", "20270301T100000", tzid="America/New_York", rrule="FREQ=WEEKLY;COUNT=4"
        ),
    )
    await sweeper.add("presumed")
    before = await sweeper.sweep(datetime(2027, 3, 8, 15, 5, tzinfo=UTC))
    after = await sweeper.sweep(datetime(2027, 3, 15, 14, 5, tzinfo=UTC))

    starts = []
    for report in (before, after):
        [appointment] = report.opened
        case = await sqlite_store.get_case(case_id_for(appointment))
        assert case is not None
        starts.append(case.scheduled_start)
    assert starts == [
        datetime(2027, 3, 8, 15, 0, tzinfo=UTC),
        datetime(2027, 3, 15, 14, 0, tzinfo=UTC),
    ]


async def test_the_sweep_workflow_sweeps_every_source_on_the_worker(
    sweeper: Sweeper, sqlite_store: CaseStore
) -> None:
    now = await sweeper.now()
    write(sweeper.feed, vevent("wf-1", _minute(now) - timedelta(minutes=2)))
    await sweeper.add("presumed")
    reports = await sweeper.h.client.execute_workflow(
        CalendarSweepWorkflow.run, id="calendar-sweep-test", task_queue=sweeper.h.task_queue
    )
    sweeper.h.started += [case_id_for(a) for r in reports for a in r.opened]

    assert [len(r.opened) for r in reports] == [1]
    history = await sweeper.h.client.get_workflow_handle("calendar-sweep-test").fetch_history()
    for phi in PHI:
        assert phi not in history.to_json()


async def test_a_late_cancellation_is_in_the_next_cases_attendance_review(
    sweeper: Sweeper,
) -> None:
    now = await sweeper.now()
    today = _minute(now) - timedelta(hours=1)
    yesterday = today - timedelta(days=1)
    write(
        sweeper.feed,
        vevent("weekday", yesterday, rrule="FREQ=DAILY;COUNT=2"),
        vevent(
            "weekday",
            yesterday,
            recurrence_id=yesterday,
            status="CANCELLED",
            modified=yesterday - timedelta(hours=2),  # two hours before: inside 24 h
        ),
    )
    await sweeper.add("presumed")
    report = await sweeper.sweep()
    [appointment] = report.opened
    handle = sweeper.h.client.get_workflow_handle(case_id_for(appointment), result_type=Resolution)
    resolution = await sweeper.h.close_as_therapist(handle)

    assert len(report.late_cancellations) == 1
    assert resolution.attendance.late_cancellations_in_window == 1
    assert resolution.attendance.misses_in_window == 1  # this session; the cancelled one is not


async def test_a_session_moved_and_missed_again_has_one_case_that_the_sweep_leaves_alone(
    sweeper: Sweeper,
) -> None:
    now = await sweeper.now()
    start, moved_to = _minute(now) - timedelta(minutes=40), _minute(now) - timedelta(minutes=10)
    write(sweeper.feed, vevent("marked-2", start, categories=["NO-SHOW"]))
    await sweeper.add("marked")
    [first] = (await sweeper.sweep()).opened
    # Marked a no-show again after its new start (a mark carried along by the move opens nothing).
    write(sweeper.feed, vevent("marked-2", moved_to, categories=["NO-SHOW"], modified=now))
    moved = await sweeper.sweep()
    [second] = moved.opened
    again = await sweeper.sweep()
    handle = sweeper.h.client.get_workflow_handle(case_id_for(second), result_type=Resolution)
    resolution = await sweeper.h.close_as_therapist(handle)
    after_close = await sweeper.sweep()

    assert moved.cancellations == [first] and second == moved_appointment_id(first, moved_to)
    assert (again.opened, again.cancellations) == ({}, [])  # the moved case is not cancelled
    assert resolution.outcome.value == "reached_safe"
    assert (after_close.opened, after_close.cancellations) == ({}, [])  # nor opened again
    assert len(await sweeper.h.store.list_cases(open_only=False)) == 2


async def test_a_deleted_session_is_cancelled_after_two_reads_and_an_empty_feed_cancels_none(
    sweeper: Sweeper,
) -> None:
    now = await sweeper.now()
    start = _minute(now) - timedelta(minutes=5)
    tomorrow = vevent("other-1", start + timedelta(days=1), client="C3")
    write(sweeper.feed, vevent("gone-1", start))
    await sweeper.add("presumed")
    [appointment] = (await sweeper.sweep()).opened
    write(sweeper.feed)  # the export came back empty: proves nothing
    emptied = [await sweeper.sweep(now + timedelta(minutes=n)) for n in (1, 2)]
    write(sweeper.feed, tomorrow)  # the session is gone, the calendar is not
    first_miss = await sweeper.sweep(now + timedelta(minutes=3))
    second_miss = await sweeper.sweep(now + timedelta(minutes=4))

    assert [r.cancellations for r in emptied] == [[], []]
    assert first_miss.cancellations == []
    assert second_miss.cancellations == [appointment]
    status = await sweeper.h.status(sweeper.h.client.get_workflow_handle(case_id_for(appointment)))
    assert status.session_cancelled_at is not None


async def test_a_session_that_maps_to_nobody_now_is_not_taken_for_deleted(
    sweeper: Sweeper,
) -> None:
    now = await sweeper.now()
    start = _minute(now) - timedelta(minutes=5)
    write(sweeper.feed, vevent("edited-1", start), vevent("other-2", start, client="C3"))
    await sweeper.add("presumed")
    opened = (await sweeper.sweep()).opened
    write(
        sweeper.feed, vevent("edited-1", start, client=None), vevent("other-2", start, client="C3")
    )
    later = [await sweeper.sweep(now + timedelta(minutes=n)) for n in (1, 2)]

    assert len(opened) == 2
    assert [r.cancellations for r in later] == [[], []]
    assert all(len(r.skipped) == 1 for r in later)


async def test_a_late_cancellation_undone_and_the_session_moved_opens_one_case(
    sweeper: Sweeper, sqlite_store: CaseStore
) -> None:
    """The sweep wrote down a late cancellation; the practice then restored the session at
    another time, and the client missed it: one case, for the new time, left alone after."""
    now = await sweeper.now()
    start = _minute(now) + timedelta(hours=3)
    write(sweeper.feed, vevent("undone-1", start, status="CANCELLED", modified=now))
    await sweeper.add("marked")
    cancelled = await sweeper.sweep()
    moved_to = _minute(now) - timedelta(minutes=5)
    write(sweeper.feed, vevent("undone-1", moved_to, categories=["NO-SHOW"], modified=now))
    opened = await sweeper.sweep()
    again = await sweeper.sweep()

    [late] = cancelled.late_cancellations
    [appointment] = opened.opened
    assert appointment == late  # the same appointment, not a "moved" one
    case = await sqlite_store.get_case(case_id_for(appointment))
    assert case is not None and case.scheduled_start == moved_to
    assert (again.opened, again.cancellations) == ({}, [])
    # The cancellation was undone: the client's record shows a missed session, not both.
    since = moved_to - timedelta(days=30)
    late = await sqlite_store.missed_sessions("C1", since, start, status="late_cancelled")
    assert late == []
    assert await sqlite_store.missed_sessions("C1", since, start) == [moved_to]


async def test_sweep_once_goes_on_past_a_source_whose_sweep_fails(
    sweeper: Sweeper, sqlite_store: CaseStore, tmp_path: Path
) -> None:
    """A bug in one source's reader (not a read error it knows) fails that source only."""
    now = await sweeper.now()
    write(sweeper.feed, vevent("fine-1", _minute(now) - timedelta(minutes=2)))
    await sweeper.add("presumed", source_id="b-fine")
    await sweeper.add("presumed", source_id="a-broken")

    async def reader(source: CalendarSource, *args: object) -> CalDavDocument:
        if source.source_id == "a-broken":
            raise RuntimeError("a bug in a calendar library")
        return await read_source(source, *args)  # type: ignore[arg-type]

    calendars = CalendarService(
        sqlite_store, sweeper.calendars._settings, sweeper.h.service, reader
    )
    broken, fine = await calendars.sweep(now)
    sweeper.h.started += [case_id_for(a) for a in fine.opened]

    assert (broken.source_id, broken.read_ok) == ("a-broken", False)
    assert broken.error == "sweep failed (RuntimeError)"
    assert fine.read_ok and len(fine.opened) == 1


async def test_an_event_naming_an_unknown_client_is_reported_without_what_it_named(
    sweeper: Sweeper,
) -> None:
    """Whatever an event calls its client may be a name: it never enters the report (which
    is history), the log or what `sweep --once` prints."""
    now = await sweeper.now()
    write(sweeper.feed, vevent("typo-1", _minute(now) - timedelta(minutes=5), client="AlexKim"))
    await sweeper.add("presumed")
    report = await sweeper.sweep()

    assert report.opened == {} and len(report.skipped) == 1
    assert "unknown client id" in report.skipped[0]
    assert "AlexKim" not in report.model_dump_json()


async def test_a_single_event_made_recurring_keeps_one_case_and_it_stays_open(
    sweeper: Sweeper, sqlite_store: CaseStore
) -> None:
    """The therapist turns today's missed intake into a weekly series: its sessions get new
    ids, but today's is the same session: no second case, and the first is not cancelled."""
    now = await sweeper.now()
    start = _minute(now) - timedelta(minutes=10)
    write(sweeper.feed, vevent("intake-1", start))
    await sweeper.add("presumed")
    [appointment] = (await sweeper.sweep()).opened
    write(sweeper.feed, vevent("intake-1", start, rrule="FREQ=WEEKLY;COUNT=10"))
    later = [await sweeper.sweep(now + timedelta(minutes=n)) for n in (1, 2, 3)]

    assert [r.opened for r in later] == [{}, {}, {}]
    assert [r.cancellations for r in later] == [[], [], []]
    assert len(await sqlite_store.list_cases(open_only=False)) == 1
    assert "the same session as case" in later[0].skipped[0]
    assert case_id_for(appointment) in later[0].skipped[0]
