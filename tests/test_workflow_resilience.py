"""Nothing lost, nothing duplicated: duplicate triggers, a worker stopped
mid-case, retried activities, and replay of a saved history (determinism)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.outreach import OutreachActivities
from models.answers import CaseOutcome
from models.case import AttemptResult
from models.directory import Channel
from models.messages import PracticeInfo
from providers.base import ProviderReceipt, TransientDeliveryError
from service.cases import OpenedCase
from store.case_store import CaseStore
from store.errors import StoreError
from tests import directory_data
from tests.directory_data import outreach_request
from tests.fakes import RecordingProviders
from tests.harness import NO_QUIET_HOURS, Harness, harness


async def test_duplicate_trigger_reports_the_existing_case(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        now = await time_skipping_env.get_current_time()

        async def trigger() -> OpenedCase:
            return await h.service.open(
                appointment_id="dup-1",
                client_id="C1",
                scheduled_start=now,
                policy=NO_QUIET_HOURS,
                now=now,
            )

        first, second = await trigger(), await trigger()
        handle = h.client.get_workflow_handle(first.case_id)
        await h.answer(handle, "client_arrived")
        await handle.result()
        after_close = await trigger()

    assert first == OpenedCase("missed-session-dup-1", new=True)
    assert second == OpenedCase("missed-session-dup-1", new=False)
    assert after_close == OpenedCase("missed-session-dup-1", new=False)  # never reopened
    assert h.providers.sent == []


async def test_notes_are_kept_in_the_case_and_the_store(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start(client_id="C3")
        await h.answer(handle, "add_note", author="front desk", text="Client's car broke")
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
        await h.round_one_sent(handle)
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


async def test_a_try_timed_out_but_still_running_does_not_text_the_client_again(
    sqlite_store: CaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Temporal gave up on try 1 (start-to-close timeout) while it was stalled before sending,
    and try 2 sent the text. When try 1 wakes up it must not send a second one."""
    providers = RecordingProviders()
    activities = await _activities(sqlite_store, providers)
    stalled, release = asyncio.Event(), asyncio.Event()
    get_client = sqlite_store.get_client

    async def slow_first_read(client_id: str) -> Any:
        if not stalled.is_set():
            stalled.set()
            await release.wait()
        return await get_client(client_id)

    monkeypatch.setattr(sqlite_store, "get_client", slow_first_read)
    first = ActivityEnvironment()
    try_1 = asyncio.create_task(first.run(activities.send_sms, outreach_request()))
    await stalled.wait()
    second = ActivityEnvironment()
    second.info = dataclasses.replace(first.info, attempt=2)
    sent = await second.run(activities.send_sms, outreach_request())
    release.set()
    late = await try_1

    assert len(providers.sent) == 1
    assert sent.result is AttemptResult.sent and late == sent


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
    first = await env.run(activities.send_sms, outreach_request())
    retried = await env.run(activities.send_sms, outreach_request())  # a replayed activity
    assert len(providers.sent) == 1
    assert first.result is AttemptResult.unconfirmed == retried.result
    assert "not resent to avoid a duplicate" in first.detail


async def test_rate_limited_text_is_sent_on_retry_after_the_providers_retry_after(
    sqlite_store: CaseStore,
) -> None:
    providers = RecordingProviders(transient_failures={"sms": 1}, retry_after=7.0)
    activities = await _activities(sqlite_store, providers)
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError) as refused:
        await env.run(activities.send_sms, outreach_request())
    retried = await env.run(activities.send_sms, outreach_request())
    assert len(providers.sent) == 1 and retried.result is AttemptResult.sent
    assert refused.value.type == "ProviderUnavailable"
    assert refused.value.category is ApplicationErrorCategory.BENIGN  # one log line, no trace
    assert refused.value.next_retry_delay == timedelta(seconds=7)  # Retry-After honoured


async def test_a_429_while_the_store_is_down_still_ends_with_the_text_sent(
    sqlite_store: CaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    providers = RecordingProviders(transient_failures={"sms": 1})
    activities = await _activities(sqlite_store, providers)
    heartbeats: list[Any] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: heartbeats.extend(details)

    async def store_down(*args: Any, **kwargs: Any) -> None:
        raise StoreError("case store unreachable")

    monkeypatch.setattr(sqlite_store, "mark_retryable", store_down)
    with pytest.raises(StoreError):  # the provider said 429, then the store write failed
        await env.run(activities.send_sms, outreach_request())
    monkeypatch.undo()
    retry = ActivityEnvironment()
    # Temporal keeps the details of the last heartbeat only.
    retry.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=heartbeats[-1:])
    attempt = await retry.run(activities.send_sms, outreach_request())
    assert len(providers.sent) == 1 and attempt.result is AttemptResult.sent


async def test_a_provider_refusing_for_longer_than_the_policy_allows_is_recorded_failed(
    sqlite_store: CaseStore,
) -> None:
    providers = RecordingProviders(transient_failures={"sms": 100})
    activities = await _activities(sqlite_store, providers)
    request = outreach_request().model_copy(update={"give_up_after": timedelta(minutes=5)})
    first = ActivityEnvironment()
    with pytest.raises(ApplicationError):
        await first.run(activities.send_sms, request)
    later = ActivityEnvironment()
    later.info = dataclasses.replace(
        first.info,
        attempt=9,
        current_attempt_scheduled_time=first.info.current_attempt_scheduled_time
        + timedelta(minutes=6),
    )
    attempt = await later.run(activities.send_sms, request)
    assert attempt.result is AttemptResult.failed
    assert attempt.detail.startswith("gave up after 6m of provider errors")
    assert providers.sent == []


async def test_accepted_call_is_polled_not_placed_again(sqlite_store: CaseStore) -> None:
    providers = RecordingProviders()
    activities = await _activities(sqlite_store, providers)
    request = outreach_request("client/1/voice", Channel.voice)
    await sqlite_store.start_attempt(request, request.scheduled_start)
    await sqlite_store.mark_accepted(request.key, "CA-earlier")
    attempt = await ActivityEnvironment().run(activities.place_call, request)
    assert providers.sent == []
    assert (attempt.result, attempt.provider_id) == (AttemptResult.voicemail, "CA-earlier")


class _RefusedThenStalledSms:
    """Refuses the first text (429), takes the second and never answers, takes any later."""

    def __init__(self) -> None:
        self.calls = 0
        self.accepted = 0
        self.stalled = asyncio.Event()

    async def send_sms(self, to: str, body: str) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise TransientDeliveryError("sms provider answered 429")
        self.accepted += 1
        if self.calls == 2:
            self.stalled.set()
            await asyncio.sleep(3600)
        return ProviderReceipt(provider_id=f"SM{self.accepted}")


@pytest.mark.parametrize("try_2_heartbeat_arrived", [False, True])
async def test_a_stale_not_sent_heartbeat_does_not_let_a_third_try_send_again(
    sqlite_store: CaseStore, try_2_heartbeat_arrived: bool
) -> None:
    """Try 1 was refused (its heartbeat: not sent). Try 2 claimed the message and handed it to
    the provider, then hung; Temporal timed it out. Try 3 must not send it again, whether or
    not try 2's own heartbeat reached Temporal before it hung."""
    await sqlite_store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    sms = _RefusedThenStalledSms()
    bundle = dataclasses.replace(RecordingProviders().bundle(), sms=sms)
    activities = OutreachActivities(
        sqlite_store, bundle, PracticeInfo(name="P", callback_number="+15555550100"), 0.0
    )
    try_1_said: list[Any] = []
    first = ActivityEnvironment()
    first.on_heartbeat = lambda *details: try_1_said.extend(details)
    with pytest.raises(ApplicationError):
        await first.run(activities.send_sms, outreach_request())
    try_2_said: list[Any] = []
    second = ActivityEnvironment()
    second.info = dataclasses.replace(first.info, attempt=2, heartbeat_details=try_1_said[-1:])
    second.on_heartbeat = lambda *details: try_2_said.extend(details)
    hung = asyncio.create_task(second.run(activities.send_sms, outreach_request()))
    await sms.stalled.wait()
    third = ActivityEnvironment()
    last_heartbeat = try_2_said[-1:] if try_2_heartbeat_arrived else try_1_said[-1:]
    third.info = dataclasses.replace(first.info, attempt=3, heartbeat_details=last_heartbeat)
    attempt = await third.run(activities.send_sms, outreach_request())
    hung.cancel()

    assert sms.accepted == 1  # only try 2's text reached the provider
    assert attempt.result is AttemptResult.unconfirmed
    assert "not resent to avoid a duplicate" in attempt.detail


class _SlowSms:
    """An SMS provider that takes the message, then is slow to answer."""

    def __init__(self) -> None:
        self.called = asyncio.Event()
        self.sent = 0

    async def send_sms(self, to: str, body: str) -> Any:
        self.sent += 1
        self.called.set()
        await asyncio.sleep(3600)


async def test_a_case_closed_while_a_text_is_handed_over_records_it_unconfirmed(
    sqlite_store: CaseStore,
) -> None:
    await sqlite_store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    slow = _SlowSms()
    providers = dataclasses.replace(RecordingProviders().bundle(), sms=slow)
    activities = OutreachActivities(
        sqlite_store, providers, PracticeInfo(name="P", callback_number="+15555550100"), 0.0
    )
    env = ActivityEnvironment()
    running = asyncio.create_task(env.run(activities.send_sms, outreach_request()))
    await slow.called.wait()
    env.cancel()  # the close-out cancels the activity mid-request
    attempt = await running

    assert slow.sent == 1 and attempt.result is AttemptResult.unconfirmed
    assert "the case closed while the message was handed to the provider" in attempt.detail
    stored = await sqlite_store.attempts_for_case(outreach_request().case_id)
    assert [a.result for a in stored] == [AttemptResult.unconfirmed]  # in the resolution too


async def test_a_case_closed_just_after_the_provider_took_a_text_records_it_sent(
    sqlite_store: CaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    providers = RecordingProviders()
    activities = await _activities(sqlite_store, providers)
    writing, mark_accepted = asyncio.Event(), sqlite_store.mark_accepted

    async def slow_write(*args: Any) -> None:
        writing.set()
        await asyncio.sleep(3600)
        await mark_accepted(*args)

    monkeypatch.setattr(sqlite_store, "mark_accepted", slow_write)
    env = ActivityEnvironment()
    running = asyncio.create_task(env.run(activities.send_sms, outreach_request()))
    await writing.wait()
    env.cancel()
    attempt = await running

    assert len(providers.sent) == 1 and attempt.result is AttemptResult.sent
    stored = await sqlite_store.attempts_for_case(outreach_request().case_id)
    assert [a.result for a in stored] == [AttemptResult.sent]
