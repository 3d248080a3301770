"""What one sweep decides (`models.calendar.plan_sweep`), as a pure function: moved sessions,
sessions missing from a read, and when a cancellation counts as late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.calendar import (
    CalendarSession,
    KnownSession,
    NoteAbsence,
    NoteCancellation,
    NoteRestored,
    OpenCase,
    ReportCancellation,
    SourceMode,
    SweepAction,
    SweepRead,
    SweepRules,
    moved_appointment_id,
    plan_sweep,
)

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
WINDOW = (NOW - timedelta(days=2), NOW + timedelta(days=2))
RULES = SweepRules(mode=SourceMode.marked)


def session(appointment_id: str, start: datetime, **changes: object) -> CalendarSession:
    fields: dict[str, object] = {
        "appointment_id": appointment_id,
        "source_id": "s",
        "client_id": "C1",
        "therapist_id": "T1",
        "start": start,
    }
    return CalendarSession.model_validate({**fields, **changes})


def known(appointment_id: str, start: datetime, **changes: object) -> KnownSession:
    fields: dict[str, object] = {
        "appointment_id": appointment_id,
        "case_open": True,
        "case_opened": True,
        "scheduled_start": start,
    }
    return KnownSession.model_validate({**fields, **changes})


def plan(
    sessions: list[CalendarSession], *known_sessions: KnownSession, **read: object
) -> list[SweepAction]:
    sweep_read = SweepRead.model_validate({"sessions": sessions, "window": WINDOW, **read})
    return plan_sweep(sweep_read, {k.appointment_id: k for k in known_sessions}, RULES, NOW)


# ---------------------------------------------------------------------- moved sessions
START = NOW - timedelta(hours=1)
MOVED_TO = NOW - timedelta(minutes=20)
MOVED = moved_appointment_id("A", MOVED_TO)


def test_the_case_of_a_moved_session_is_not_cancelled_by_the_next_sweep() -> None:
    """The session moved (its case was told), then was missed at its new time and a case
    opened for the moved appointment: the next sweep must leave that case alone."""
    original = known("A", START, case_open=False, cancellation_reported=True)
    actions = plan(
        [session("A", MOVED_TO, no_show=True)], original, known(MOVED, MOVED_TO), complete=True
    )
    assert actions == []


def test_a_closed_case_of_a_moved_session_is_never_opened_again() -> None:
    original = known("A", START, case_open=False, cancellation_reported=True)
    closed = known(MOVED, MOVED_TO, case_open=False)
    assert plan([session("A", MOVED_TO, no_show=True)], original, closed) == []


def test_a_missed_moved_session_opens_a_case_of_its_own_once() -> None:
    original = known("A", START, case_open=False, cancellation_reported=True)
    [opened] = plan([session("A", MOVED_TO, no_show=True, modified_at=NOW)], original)
    assert isinstance(opened, OpenCase) and opened.appointment_id == MOVED


def test_a_moved_session_cancelled_later_tells_the_moved_appointments_case() -> None:
    original = known("A", START, case_open=False, cancellation_reported=True)
    actions = plan(
        [session("A", MOVED_TO, status="cancelled", modified_at=NOW)],
        original,
        known(MOVED, MOVED_TO),
    )
    assert ReportCancellation(appointment_id=MOVED) in actions
    assert ReportCancellation(appointment_id="A") not in actions


# ---------------------------------------------------------------------- missing sessions
OTHER = session("B", NOW + timedelta(days=1))


def test_a_session_missing_once_is_noted_and_missing_twice_is_cancelled() -> None:
    case = known("A", START)
    assert plan([OTHER], case) == [NoteAbsence(appointment_id="A", absent=True)]
    noted = case.model_copy(update={"absent_since": NOW - timedelta(minutes=1)})
    assert plan([OTHER], noted) == [ReportCancellation(appointment_id="A")]


def test_a_session_back_after_a_missing_read_is_not_cancelled() -> None:
    noted = known("A", START, absent_since=NOW - timedelta(minutes=1))
    actions = plan([session("A", START), OTHER], noted)
    assert actions == [NoteAbsence(appointment_id="A", absent=False)]


def test_a_read_of_no_sessions_cancels_nothing() -> None:
    """An emptied export or a calendar read with the wrong account proves nothing."""
    noted = known("A", START, absent_since=NOW - timedelta(minutes=1))
    assert plan([], known("A", START)) == []
    assert plan([], noted) == []


def test_a_read_with_an_unreadable_event_cancels_nothing() -> None:
    """The event that could not be read may be the session that seems to be gone."""
    noted = known("A", START, absent_since=NOW - timedelta(minutes=1))
    assert plan([OTHER], noted, complete=False) == []


def test_a_session_skipped_but_seen_is_not_missing() -> None:
    """It now maps to nobody, say: it is still in the calendar, so its case is not cancelled."""
    noted = known("A", START, absent_since=NOW - timedelta(minutes=1))
    actions = plan([OTHER], noted, present=frozenset({"A"}))
    assert actions == [NoteAbsence(appointment_id="A", absent=False)]


# ---------------------------------------------------------------------- late cancellations
TOMORROW = NOW + timedelta(hours=20)


def test_a_cancellation_is_decided_once_whatever_the_feed_says_later() -> None:
    cancelled = session("C", TOMORROW, status="cancelled", modified_at=NOW)
    [first] = plan([cancelled])
    assert isinstance(first, NoteCancellation) and first.late and first.cancelled_at == NOW
    seen = known("C", TOMORROW, case_open=False, case_opened=False, cancellation_seen=True)
    # The feed rewrites LAST-MODIFIED (an unrelated edit): the decision stands.
    edited = cancelled.model_copy(update={"modified_at": NOW - timedelta(days=5)})
    assert plan([edited], seen) == []


def test_a_cancellation_made_in_good_time_is_not_late() -> None:
    early = session("C", TOMORROW, status="cancelled", modified_at=NOW - timedelta(days=3))
    [decided] = plan([early])
    assert isinstance(decided, NoteCancellation) and not decided.late


def test_an_undated_cancellation_is_not_late_unless_a_previous_read_saw_it_confirmed() -> None:
    """Without LAST-MODIFIED it is not known when it was cancelled: only a previous read that
    covered the session (and did not see it cancelled) dates it to since then."""
    undated = session("C", TOMORROW, status="cancelled")
    [unknown] = plan([undated])
    assert isinstance(unknown, NoteCancellation)
    assert (unknown.late, unknown.cancelled_at) == (False, None)
    last_read = NOW - timedelta(minutes=1)
    [dated] = plan([undated], previous_read_at=last_read)
    assert isinstance(dated, NoteCancellation) and dated.late and dated.cancelled_at == last_read
    # After six hours of downtime, a cancellation made 25 h ahead may have been in good time.
    [after_downtime] = plan([undated], previous_read_at=NOW - timedelta(hours=6))
    assert isinstance(after_downtime, NoteCancellation) and not after_downtime.late
    far = session("D", NOW + timedelta(days=2) - timedelta(minutes=1), status="cancelled")
    # The previous read, a day ago, did not yet reach this session: still not known.
    [not_seen] = plan([far], previous_read_at=NOW - timedelta(days=1))
    assert isinstance(not_seen, NoteCancellation) and not_seen.cancelled_at is None


def test_a_cancelled_session_back_in_the_calendar_voids_its_late_cancellation() -> None:
    seen = known("C", TOMORROW, case_open=False, case_opened=False, cancellation_seen=True)
    assert plan([session("C", TOMORROW)], seen) == [NoteRestored(appointment_id="C")]
    assert (
        plan([session("C", TOMORROW)], seen.model_copy(update={"cancellation_seen": False})) == []
    )


def test_a_moved_session_keeps_its_old_no_show_mark_but_opens_no_case_for_it() -> None:
    """The therapist marked Monday's session a no-show, then dragged it to now: the mark came
    along. Only a mark set after the new start opens a case for the moved appointment."""
    original = known("A", START, case_open=False, cancellation_reported=True)
    carried = session("A", MOVED_TO, no_show=True, modified_at=START + timedelta(minutes=5))
    assert plan([carried], original) == []
    marked_again = carried.model_copy(update={"modified_at": NOW})
    [opened] = plan([marked_again], original)
    assert isinstance(opened, OpenCase) and opened.appointment_id == MOVED


def test_a_session_moved_and_cancelled_between_two_reads_tells_the_open_case() -> None:
    cancelled = session("A", MOVED_TO, status="cancelled", modified_at=NOW)
    assert ReportCancellation(appointment_id="A") in plan([cancelled], known("A", START))


def test_a_source_added_now_opens_nothing_for_sessions_before_it() -> None:
    earlier = session("A", NOW - timedelta(hours=3), no_show=True)
    assert plan([earlier], source_added_at=NOW - timedelta(hours=1)) == []
    [just_before] = plan([earlier], source_added_at=NOW - timedelta(hours=2, minutes=30))
    assert isinstance(just_before, OpenCase)  # within the hour before it was added
    [opened] = plan([earlier], source_added_at=NOW - timedelta(days=1))
    assert isinstance(opened, OpenCase)


def test_a_restored_moved_appointment_voids_its_late_cancellation() -> None:
    original = known("A", START, case_open=False, cancellation_reported=True)
    moved = known(MOVED, MOVED_TO, case_open=False, case_opened=False, cancellation_seen=True)
    actions = plan([session("A", MOVED_TO)], original, moved)
    assert NoteRestored(appointment_id=MOVED) in actions
