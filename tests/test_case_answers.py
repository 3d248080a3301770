"""People answer a case through Workflow Updates, and the close-out ends it at any stage: what is
sent after each answer, what is recorded, and what a rejected answer leaves behind (nothing)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import RawValue
from temporalio.testing import WorkflowEnvironment

from models.answers import CaseOutcome
from models.case import AttemptResult, Stage
from service.cases import CaseError
from store.case_store import CaseStore
from tests import directory_data
from tests.harness import DEFAULT_POLICY, NO_QUIET_HOURS, REACHED, Harness, harness
from workflows import search_attributes as sa
from workflows.missed_session import HISTORY_EVENT_BUDGET

CLOSE_OUT = REACHED.model_dump(mode="json")


async def _update_events(h: Harness, case_id: str) -> list[str]:
    history = await h.client.get_workflow_handle(case_id).fetch_history()
    kinds = {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED,
    }
    return [EventType.Name(e.event_type) for e in history.events if e.event_type in kinds]


async def test_close_out_during_the_grace_wait_sends_nothing_and_a_second_is_rejected(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        await time_skipping_env.sleep(timedelta(minutes=5))
        answer = await h.answer(handle, "client_reached", **{**CLOSE_OUT, "by": "T1"})
        resolution = await handle.result()
        await time_skipping_env.sleep(timedelta(hours=6))
        with pytest.raises(CaseError) as second:
            await h.answer(handle, "client_reached", **CLOSE_OUT)

    assert "closed as reached_safe" in answer
    assert h.providers.sent == [] and resolution.attempts == []
    assert (resolution.outcome, resolution.closed_by) == (CaseOutcome.reached_safe, "T1")
    assert "case is already closed: reached_safe by T1 at" in str(second.value)
    stored = await sqlite_store.get_case(resolution.case_id)
    assert stored is not None and stored.outcome == "reached_safe"


async def test_close_out_during_round_one_sends_nothing_after_it(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        await h.round_one_sent(handle)
        await h.answer(handle, "client_reached", **CLOSE_OUT)
        resolution = await handle.result()
        await time_skipping_env.sleep(timedelta(days=2))

    assert len(h.providers.sent) == 3  # round 1 only: no round 2, no EC, no therapist
    assert {a.step for a in resolution.attempts} == {
        "client/1/voice",
        "client/1/sms",
        "client/1/email",
    }
    stored = await sqlite_store.attempts_for_case(resolution.case_id)
    assert sorted(a.step for a in stored) == sorted(a.step for a in resolution.attempts)


async def test_close_out_during_a_quiet_hours_deferral_cancels_the_deferred_call(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    now = await time_skipping_env.get_current_time()
    offset = (23 - (now + timedelta(minutes=20)).hour) % 24  # grace ends at 23:xx there
    zone = f"Etc/GMT{-(offset - 24 if offset > 12 else offset):+d}"
    async with harness(time_skipping_env, sqlite_store) as h:
        await sqlite_store.import_directory([], [directory_data.client("C9", time_zone=zone)])
        handle = await h.start(client_id="C9", policy=DEFAULT_POLICY)
        status = await h.advance_to(handle, Stage.contacting_client.value)
        while not h.providers.sent:  # the email goes at once; call and text wait for 08:00
            await time_skipping_env.sleep(timedelta(minutes=1))
        status = await h.status(handle)
        await h.answer(handle, "client_reached", **CLOSE_OUT)
        resolution = await handle.result()
        await time_skipping_env.sleep(timedelta(days=1))

    assert [d.description for d in status.deferred] == [
        "Call to client, round 1 (quiet hours)",
        "SMS to client, round 1 (quiet hours)",
    ]
    assert [(s.channel, s.to) for s in h.providers.sent] == [("email", "alex@example.org")]
    assert [a.step for a in resolution.attempts] == ["client/1/email"]


async def test_close_out_while_the_emergency_contact_is_tried(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start(client_id="C5")  # high risk: EC after one round
        await h.advance_to(handle, Stage.contacting_emergency_contact.value)
        await h.answer(handle, "client_reached", **CLOSE_OUT)
        resolution = await handle.result()
        await time_skipping_env.sleep(timedelta(days=1))

    staff = {"maya.lin@example.org", "+15555550001", "sam.ortiz@example.org"}
    to_staff = [s for s in h.providers.sent if s.to in staff]
    # Only the high-risk heads-up went to the therapist: no confirmation request, no reminder.
    assert len(to_staff) == 2 and all("started" in s.body.lower() for s in to_staff)
    assert {a.step for a in resolution.attempts if a.recipient_role.value == "therapist"} == {
        "therapist/outreach-started/email",
        "therapist/outreach-started/sms",
    }
    assert resolution.outcome is CaseOutcome.reached_safe


async def test_rejected_answers_leave_nothing_in_history_and_say_why(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        case_id = handle.id
        # Past the service's own edge check: straight to the workflow's validators.
        rejected = []
        for update, args in (
            ("client_reached", [{**CLOSE_OUT, "outcome": "fine"}]),
            ("client_reached", [{**CLOSE_OUT, "outcome": "attended_late"}]),
            ("client_reached", [{**CLOSE_OUT, "fee": {"decision": "waive"}}]),
            ("add_note", [{"author": "desk", "text": "a\x00b"}]),
            ("add_note", ["not an object"]),
            ("client_reached", [RawValue(Payload(metadata={"encoding": b"foo/bar"}, data=b"x"))]),
            ("client_reached", [CLOSE_OUT, CLOSE_OUT]),
            ("client_reached", []),
        ):
            with pytest.raises(Exception) as err:
                await handle.execute_update(update, args=args)
            rejected.append(str(getattr(err.value, "cause", None) or err.value))
        events = await _update_events(h, case_id)
        await h.answer(handle, "client_reached", **CLOSE_OUT)  # the case was never wedged
        resolution = await handle.result()

    assert "outcome must be one of reached_safe, rescheduled" in rejected[0]
    assert "outcome must be one of" in rejected[1]
    assert "a fee waiver needs a reason" in rejected[2]
    assert "text: must not contain control characters" in rejected[3]
    assert "expected a JSON object" in rejected[4]
    assert "could not be read" in rejected[5]
    assert events == []  # a rejected Update leaves nothing in history
    assert resolution.outcome is CaseOutcome.reached_safe


async def test_the_service_rejects_bad_answers_before_sending_them(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        for fields, message in (
            ({**CLOSE_OUT, "outcome": "fine"}, "^outcome must be one of reached_safe, "),
            ({**CLOSE_OUT, "note": ""}, "note: String should have at least 1 character"),
            ({**CLOSE_OUT, "colour": "red"}, "unknown field colour"),
            ({**CLOSE_OUT, "by": "T1\n"}, None),  # stripped: fine
        ):
            if message is None:
                continue
            with pytest.raises(CaseError, match=message):
                await h.answer(handle, "client_reached", **fields)
        with pytest.raises(CaseError, match="no such case: missed-session-nope"):
            await h.service.answer("nope", "client_arrived", {})
        await h.answer(handle, "client_arrived")
        await handle.result()


async def test_signals_of_any_shape_are_recorded_as_rejected_and_never_wedge_the_case(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start(client_id="C3")
        bad = RawValue(Payload(metadata={"encoding": b"foo/bar"}, data=b'"x"'))
        await handle.signal("client_reached", bad)
        await handle.signal("client_reached", args=[CLOSE_OUT, CLOSE_OUT])
        await handle.signal("add_note")
        status = await h.status(handle)
        resolution = await h.close_as_therapist(handle)

    assert status.stage is Stage.grace_wait
    assert [r.signal for r in resolution.rejected_signals] == [
        "client_reached",
        "client_reached",
        "add_note",
    ]
    assert all("send the Update" in r.error for r in resolution.rejected_signals)


async def test_cancellation_from_the_web_ui_closes_the_case_as_documented(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        await h.round_one_sent(handle)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        description = await handle.describe()
        await time_skipping_env.sleep(timedelta(days=1))

    resolution = await sqlite_store.get_resolution(handle.id)
    assert resolution is not None
    assert (resolution.outcome, resolution.closed_by) == (
        CaseOutcome.cancelled_by_operator,
        "operator",
    )
    assert len(resolution.attempts) == 3 and len(h.providers.sent) == 3
    assert description.status is WorkflowExecutionStatus.CANCELED
    attributes = description.typed_search_attributes
    assert attributes.get(sa.CASE_OUTCOME) == "cancelled_by_operator"
    assert attributes.get(sa.OUTREACH_STAGE) == "closed"


async def test_a_terminated_case_is_marked_when_cases_are_listed(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        await time_skipping_env.sleep(timedelta(minutes=1))
        await handle.terminate(reason="ops: duplicate")
        before = await sqlite_store.get_case(handle.id)
        listing = await h.service.list_cases(open_only=False)

    assert before is not None and before.closed_at is None  # no code ran at termination
    [case] = [c for c in listing.cases if c.case_id == handle.id]
    assert listing.reconciled and case.stage is Stage.closed and case.outcome == "terminated"
    assert any("TERMINATED" in n.text for n in await sqlite_store.notes_for_case(handle.id))


async def test_high_risk_therapist_is_told_when_outreach_starts(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        start = await time_skipping_env.get_current_time()
        handle = await h.start(client_id="C5")
        await h.close_as_therapist(handle)
        status_before = [s for s in h.providers.sent if s.to == "maya.lin@example.org"]

    first = status_before[0]
    assert round((first.at - start).total_seconds() / 60) == 20  # with round 1, not after EC
    assert "outreach has started" in first.body.lower() or "started" in first.subject.lower()


async def test_opted_out_number_is_never_texted_or_called_again_and_consent_is_withdrawn(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        h.providers.opted_out_numbers.add("+15555550101")
        handle = await h.start(client_id="C3")
        resolution = await h.close_as_therapist(handle)
    client = await sqlite_store.get_client("C3")

    phone_tries = [t for t in h.providers.tries if t.endswith("+15555550101")]
    assert sorted(phone_tries) == ["sms:+15555550101", "voice:+15555550101"]  # round 1 only
    sms = next(a for a in resolution.attempts if a.step == "client/1/sms")
    assert sms.result is AttemptResult.opted_out
    assert client is not None and not client.consent.sms
    [change] = client.consent_changes
    assert (change.channel.value, change.granted) == ("sms", False)
    assert resolution.case_id in change.source


async def test_a_bug_in_an_activity_stops_the_case_visibly_and_it_resumes_when_fixed(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        h.providers.broken_channels.add("sms")  # raises a plain exception: a bug
        handle = await h.start(client_id="C3")
        await h.advance_to(handle, Stage.contacting_client.value)
        await time_skipping_env.sleep(timedelta(hours=2))
        description = await handle.describe()
        pending = list(description.raw_description.pending_activities)
        status = await h.status(handle)
        h.providers.broken_channels.clear()  # the fix is deployed
        resolution = await h.close_as_therapist(handle)

    assert status.stage is Stage.contacting_client  # held on the bug, not past it
    # The round's call, text and email are one activity: it is the one held on the bug.
    [stuck] = [p for p in pending if p.activity_type.name == "send_messages"]
    assert stuck.attempt > 3 and "bug" in stuck.last_failure.message
    sms = next(a for a in resolution.attempts if a.step == "client/1/sms")
    assert sms.result is AttemptResult.sent  # not dressed up as a failed message
    # Its retries sent the call and the email of that round once, not once per retry.
    round_one = [a.step for a in resolution.attempts if a.step.startswith("client/1/")]
    assert sorted(round_one) == ["client/1/email", "client/1/sms", "client/1/voice"]
    channels = [s.channel for s in h.providers.sent]
    assert sorted(channels[: channels.index("sms") + 1]) == ["email", "sms", "voice"]


async def test_reminders_run_out_then_the_supervisor_is_told_again_until_closed(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start(client_id="C3")
        status = await h.advance_to(handle, Stage.awaiting_therapist.value)
        waiting_since = status.stage_since
        await time_skipping_env.sleep(timedelta(days=3, hours=1))
        await h.close_as_therapist(handle)

    supervisor = [s for s in h.providers.sent if s.to == "sam.ortiz@example.org"]
    hours = [round((s.at - waiting_since).total_seconds() / 3600) for s in supervisor]
    assert hours == [24, 48, 72]  # escalation, then every 24 h (policy) while the case is open


async def test_a_case_that_waits_for_weeks_keeps_a_small_history(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    policy = NO_QUIET_HOURS.model_copy(
        update={
            "demo": True,
            "therapist_channels": NO_QUIET_HOURS.therapist_channels[:1],
            "supervisor_renotify_every": timedelta(minutes=10),
        }
    )
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start(client_id="C3", policy=policy)
        await h.advance_to(handle, Stage.awaiting_therapist.value)
        await time_skipping_env.sleep(timedelta(days=2))
        resolution = await h.close_as_therapist(handle)
        lengths = await h.run_lengths(handle.id)

    notices = [a for a in resolution.attempts if "renotice" in a.step]
    assert len(notices) >= 140  # every 10 minutes from the escalation (24 h) on, all documented
    assert len({a.step for a in resolution.attempts}) == len(resolution.attempts)
    assert len(lengths) >= 3  # continued as new, carrying the case
    assert max(lengths) <= HISTORY_EVENT_BUDGET + 40, lengths
    assert resolution.outcome is CaseOutcome.reached_safe


async def test_a_session_cancelled_during_the_grace_wait_reaches_nobody_but_the_therapist(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        await time_skipping_env.sleep(timedelta(minutes=5))
        answer = await h.answer(handle, "session_cancelled", by="calendar")
        with pytest.raises(CaseError) as again:
            await h.answer(handle, "session_cancelled", by="calendar")
        status = await h.awaiting_close_out(handle)
        resolution = await h.close_as_therapist(handle)

    assert "outreach stops; the therapist still closes the case" in answer
    assert "cancellation is already recorded" in str(again.value)
    assert status.stage is Stage.awaiting_therapist and status.session_cancelled_at is not None
    assert {s.to for s in h.providers.sent} == {"maya.lin@example.org", "+15555550001"}
    confirm = [s for s in h.providers.sent if s.to == "maya.lin@example.org"]
    assert "cancelled or moved in the calendar" in confirm[0].body
    assert resolution.emergency_contact_note is None
    # Cancelled after its start: a late cancellation for the fee decision, not a no-show.
    review = resolution.attendance
    assert (review.misses_in_window, review.late_cancellations_in_window) == (0, 1)
    assert any("session was cancelled" in n.text for n in resolution.notes)
    stored = await sqlite_store.notes_for_case(resolution.case_id)
    assert any("session was cancelled" in n.text for n in stored)


async def test_a_session_moved_during_round_one_stops_outreach_and_says_where_it_went(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        await h.round_one_sent(handle)
        now = await time_skipping_env.get_current_time()
        moved_to = (now + timedelta(days=7)).isoformat()
        await h.answer(handle, "session_cancelled", moved_to=moved_to, by="calendar")
        resolution = await h.close_as_therapist(handle)

    client_steps = [a.step for a in resolution.attempts if a.recipient_role.value == "client"]
    assert sorted(client_steps) == ["client/1/email", "client/1/sms", "client/1/voice"]
    assert not [a for a in resolution.attempts if a.recipient_role.value == "emergency_contact"]
    assert any("session was moved to" in n.text for n in resolution.notes)
    review = resolution.attendance
    assert (review.misses_in_window, review.late_cancellations_in_window) == (0, 1)


async def test_a_session_moved_to_year_9999_is_refused_and_the_case_goes_on(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        with pytest.raises(CaseError) as refused:
            await h.answer(handle, "session_cancelled", moved_to="9999-12-31T23:00:00-05:00")
        resolution = await h.close_as_therapist(handle)

    assert "moved_to: must be a date between the years 2000 and 2200" in str(refused.value)
    assert resolution.outcome is CaseOutcome.reached_safe
