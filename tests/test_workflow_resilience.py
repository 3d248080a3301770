"""Nothing lost, nothing duplicated: duplicate triggers, malformed signals, a worker stopped
mid-case, retried activities, and replay of a saved history (determinism)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Replayer

from activities.outreach import OutreachActivities
from models.case import AttemptResult, MissedSessionInput, Stage
from models.directory import Channel
from models.messages import PracticeInfo
from models.signals import CaseOutcome
from providers.base import TransientDeliveryError
from settings import Settings
from starter import trigger_case
from store.case_store import CaseStore
from tests import directory_data
from tests.directory_data import outreach_request
from tests.fakes import RecordingProviders
from tests.harness import NO_QUIET_HOURS, REACHED, Harness, harness
from workflows.missed_session import MissedSessionWorkflow

SAVED_HISTORY = Path(__file__).parent / "histories" / "full_case.json"


async def test_duplicate_trigger_reports_the_existing_case(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        settings = Settings(temporal_task_queue=h.task_queue)
        case = MissedSessionInput(
            appointment_id="dup-1",
            client_id="C1",
            therapist_id="T1",
            scheduled_start=await time_skipping_env.get_current_time(),
            policy=NO_QUIET_HOURS,
        )
        first = await trigger_case(h.client, sqlite_store, settings, case)
        second = await trigger_case(h.client, sqlite_store, settings, case)
        handle = h.client.get_workflow_handle(case.case_id)
        await handle.signal(MissedSessionWorkflow.client_arrived, {})
        await handle.result()
        after_close = await trigger_case(h.client, sqlite_store, settings, case)

    assert first == ("missed-session-dup-1", True)
    assert second == ("missed-session-dup-1", False)
    assert after_close == ("missed-session-dup-1", False)  # never reopened for the appointment
    assert h.providers.sent == []


async def test_malformed_signal_is_recorded_as_rejected_and_the_case_carries_on(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start(client_id="C3")
        await h.advance_to(handle, Stage.awaiting_therapist.value)
        await handle.signal("client_reached", {"outcome": "fine", "note": ""})
        await handle.signal("add_note", "not an object")
        await handle.signal("client_reached", {**REACHED.model_dump(mode="json"), "fee": {}})
        status = await h.status(handle)
        assert status.stage is Stage.awaiting_therapist
        await handle.signal(MissedSessionWorkflow.client_reached, REACHED)
        resolution = await handle.result()

    rejected = [(r.signal, r.error) for r in resolution.rejected_signals]
    assert [name for name, _ in rejected] == ["client_reached", "add_note", "client_reached"]
    assert "outcome" in rejected[0][1] and "note" in rejected[0][1]
    assert "fee.decision" in rejected[2][1]
    assert resolution.outcome is CaseOutcome.reached_safe


async def test_notes_are_kept_in_the_case_and_the_store(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start(client_id="C3")
        await handle.signal(
            MissedSessionWorkflow.add_note, {"author": "front desk", "text": "Client's car broke"}
        )
        resolution = await h.close_as_therapist(handle)

    assert [n.text for n in resolution.notes if n.author == "front desk"] == ["Client's car broke"]
    stored = await sqlite_store.notes_for_case(resolution.case_id)
    assert [n.text for n in stored] == [n.text for n in resolution.notes]


async def test_worker_stopped_during_a_timer_and_a_new_one_finishes_the_case(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    await sqlite_store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    h = Harness(time_skipping_env, sqlite_store)
    # No sticky cache: the next worker gets the case at once instead of after the sticky timeout.
    async with h.worker(max_cached_workflows=0):
        handle = await h.start()
        await h.advance_to(handle, Stage.contacting_client.value)
        while len(h.providers.sent) < 3:  # round 1 sent; now in the 30 min wait
            await time_skipping_env.sleep(timedelta(seconds=5))
    sent_before = len(h.providers.sent)
    # (The time-skipping server cannot skip time while a workflow task waits for a worker, so
    # the new worker starts at once; the case is mid-timer, as after a crash.)
    async with h.worker():  # a brand-new worker, with no cached state, picks the case up
        resolution = await h.close_as_therapist(handle)

    assert sent_before == 3
    steps = [a.step for a in resolution.attempts]
    assert len(steps) == len(set(steps))  # no step sent twice
    assert len(h.providers.sent) == len(steps) == 8 + 3 + 2
    assert resolution.outcome is CaseOutcome.reached_safe


async def _activities(store: CaseStore, providers: RecordingProviders) -> OutreachActivities:
    await store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    return OutreachActivities(
        store, providers.bundle(), PracticeInfo(name="P", callback_number="+15555550100"), 0.0
    )


async def test_retried_activity_does_not_text_the_client_twice(sqlite_store: CaseStore) -> None:
    providers = RecordingProviders()
    activities = await _activities(sqlite_store, providers)
    env = ActivityEnvironment()
    first = await env.run(activities.send_sms, outreach_request())
    again = await env.run(activities.send_sms, outreach_request())
    assert len(providers.sent) == 1
    assert again == first and first.result is AttemptResult.sent


async def test_interrupted_send_is_not_resent_but_recorded_unconfirmed(
    sqlite_store: CaseStore,
) -> None:
    providers = RecordingProviders()
    activities = await _activities(sqlite_store, providers)
    request = outreach_request()
    # A previous try wrote its row and then died while the provider may have had the message.
    await sqlite_store.start_attempt(request, request.scheduled_start)
    attempt = await ActivityEnvironment().run(activities.send_sms, request)
    assert providers.sent == []
    assert attempt.result is AttemptResult.unconfirmed


async def test_timeout_after_the_provider_took_the_text_is_not_resent(
    sqlite_store: CaseStore,
) -> None:
    providers = RecordingProviders(timeouts_after_send={"sms": 1})
    activities = await _activities(sqlite_store, providers)
    env = ActivityEnvironment()
    with pytest.raises(TransientDeliveryError):
        await env.run(activities.send_sms, outreach_request())
    retried = await env.run(activities.send_sms, outreach_request())  # Temporal's retry
    assert len(providers.sent) == 1
    assert retried.result is AttemptResult.unconfirmed


async def test_rate_limited_text_is_sent_on_retry(sqlite_store: CaseStore) -> None:
    providers = RecordingProviders(transient_failures={"sms": 1})
    activities = await _activities(sqlite_store, providers)
    env = ActivityEnvironment()
    with pytest.raises(TransientDeliveryError):
        await env.run(activities.send_sms, outreach_request())
    retried = await env.run(activities.send_sms, outreach_request())
    assert len(providers.sent) == 1 and retried.result is AttemptResult.sent


async def test_accepted_call_is_polled_not_placed_again(sqlite_store: CaseStore) -> None:
    providers = RecordingProviders()
    activities = await _activities(sqlite_store, providers)
    request = outreach_request("client/1/voice", Channel.voice)
    await sqlite_store.start_attempt(request, request.scheduled_start)
    await sqlite_store.mark_accepted(request.key, "CA-earlier")
    attempt = await ActivityEnvironment().run(activities.place_call, request)
    assert providers.sent == []
    assert (attempt.result, attempt.provider_id) == (AttemptResult.voicemail, "CA-earlier")


async def test_saved_full_case_history_replays_deterministically() -> None:
    """A case recorded with the current code; a change to command order must fail here
    (then use workflow.patched or a new workflow type). Re-record with
    `python -m tests.record_history` only for an intentional, versioned change."""
    history = WorkflowHistory.from_json(
        "missed-session-history", json.loads(SAVED_HISTORY.read_text())
    )
    replayer = Replayer(workflows=[MissedSessionWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
