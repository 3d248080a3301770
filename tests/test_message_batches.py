"""A step's messages in one activity (`OutreachActivities.send_messages`): each message keeps
its own claim, row and heartbeat, so a retry of the batch resends only what did not go out, and
a close-out mid-batch records every message as what it became."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from activities.outreach import OutreachActivities
from models.case import AttemptResult
from models.directory import Channel
from models.messages import PracticeInfo
from models.outreach import OutreachBatch
from providers.base import ProviderReceipt, Providers
from store.case_store import CaseStore
from store.errors import StoreError
from tests import directory_data
from tests.directory_data import outreach_request
from tests.fakes import RecordingProviders

PRACTICE = PracticeInfo(name="P", callback_number="+15555550100")
ROUND_ONE = OutreachBatch(
    messages=[
        outreach_request("client/1/voice", Channel.voice),
        outreach_request("client/1/sms", Channel.sms),
        outreach_request("client/1/email", Channel.email),
    ]
)


async def _activities(store: CaseStore, providers: Providers) -> OutreachActivities:
    await store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    return OutreachActivities(store, providers, PRACTICE, 0.0)


def _listening() -> tuple[ActivityEnvironment, list[Any]]:
    said: list[Any] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: said.extend(details)
    return env, said


def _next_try(earlier: ActivityEnvironment, said: list[Any], attempt: int) -> ActivityEnvironment:
    """The next try, holding what Temporal keeps: the last heartbeat of the earlier try."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(earlier.info, attempt=attempt, heartbeat_details=said[-1:])
    return env


async def test_a_batch_sends_each_message_once_and_its_retry_only_the_refused_text(
    sqlite_store: CaseStore,
) -> None:
    providers = RecordingProviders(transient_failures={"sms": 1}, retry_after=7.0)
    activities = await _activities(sqlite_store, providers.bundle())
    first, said = _listening()
    with pytest.raises(ApplicationError) as refused:
        await first.run(activities.send_messages, ROUND_ONE)
    after_first = sorted(s.channel for s in providers.sent)
    attempts = await _next_try(first, said, 2).run(activities.send_messages, ROUND_ONE)

    # The call and the email went out on try 1; the refusal failed the batch only after them,
    # with the provider's Retry-After, as one expected log line.
    assert after_first == ["email", "voice"]
    assert refused.value.type == "ProviderUnavailable"
    assert refused.value.category is ApplicationErrorCategory.BENIGN
    assert refused.value.next_retry_delay is not None
    assert refused.value.next_retry_delay.total_seconds() == 7
    # Try 2 sent the text alone and answered for all three, in the batch's order.
    assert sorted(s.channel for s in providers.sent) == ["email", "sms", "voice"]
    assert [(a.step, a.result) for a in attempts] == [
        ("client/1/voice", AttemptResult.voicemail),
        ("client/1/sms", AttemptResult.sent),
        ("client/1/email", AttemptResult.sent),
    ]
    stored = await sqlite_store.attempts_for_case(ROUND_ONE.messages[0].case_id)
    assert sorted(a.step for a in stored) == sorted(a.step for a in attempts)


async def test_a_refused_text_while_the_store_is_down_is_sent_by_the_next_try_of_the_batch(
    sqlite_store: CaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 429 could not be written to the store: only the text's own entry in the batch's
    heartbeat says it did not go out, and that is what lets the next try send it."""
    providers = RecordingProviders(transient_failures={"sms": 1})
    activities = await _activities(sqlite_store, providers.bundle())

    async def store_down(*args: Any, **kwargs: Any) -> None:
        raise StoreError("case store unreachable")

    monkeypatch.setattr(sqlite_store, "mark_retryable", store_down)
    first, said = _listening()
    with pytest.raises(StoreError):
        await first.run(activities.send_messages, ROUND_ONE)
    monkeypatch.undo()
    attempts = await _next_try(first, said, 2).run(activities.send_messages, ROUND_ONE)

    assert sorted(s.channel for s in providers.sent) == ["email", "sms", "voice"]
    assert [a.result for a in attempts][1] is AttemptResult.sent
    # The heartbeat names each message by its key; the text's says "not sent" under its claim.
    sms_said = said[-1][ROUND_ONE.messages[1].key]
    assert sms_said["not_sent"] is True and sms_said["claim"]


async def test_a_claim_written_as_the_store_went_down_is_sent_by_the_next_try(
    sqlite_store: CaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim reached the store but its answer was lost (the outage drill's window): the
    try never called the provider, says so under its claim, and the next try sends the text
    instead of recording it "unconfirmed"."""
    providers = RecordingProviders()
    activities = await _activities(sqlite_store, providers.bundle())
    claim = sqlite_store.claim_attempt

    async def written_then_lost(request: Any, *args: Any) -> bool:
        won = await claim(request, *args)
        if request.channel.value == "sms":
            raise StoreError("case store unreachable")
        return won

    monkeypatch.setattr(sqlite_store, "claim_attempt", written_then_lost)
    first, said = _listening()
    with pytest.raises(StoreError):
        await first.run(activities.send_messages, ROUND_ONE)
    monkeypatch.undo()
    assert sorted(s.channel for s in providers.sent) == ["email", "voice"]
    attempts = await _next_try(first, said, 2).run(activities.send_messages, ROUND_ONE)

    assert sorted(s.channel for s in providers.sent) == ["email", "sms", "voice"]
    assert attempts[1].result is AttemptResult.sent


class _TakesTextsSlowly:
    """Takes every text and answers the first one only after an hour."""

    def __init__(self) -> None:
        self.taken = 0
        self.handed_over = asyncio.Event()

    async def send_sms(self, to: str, body: str) -> Any:
        self.taken += 1
        if self.taken == 1:
            self.handed_over.set()
            await asyncio.sleep(3600)
        return ProviderReceipt(provider_id=f"SM{self.taken}")


async def test_a_text_mid_send_in_a_timed_out_batch_is_not_sent_again_by_the_next_try(
    sqlite_store: CaseStore,
) -> None:
    slow = _TakesTextsSlowly()
    recording = RecordingProviders()
    activities = await _activities(sqlite_store, dataclasses.replace(recording.bundle(), sms=slow))
    first, said = _listening()
    hung = asyncio.create_task(first.run(activities.send_messages, ROUND_ONE))
    await slow.handed_over.wait()
    await asyncio.sleep(0.05)  # the call and the email finish meanwhile
    attempts = await _next_try(first, said, 2).run(activities.send_messages, ROUND_ONE)
    hung.cancel()

    assert slow.taken == 1  # the text reached the provider once
    assert sorted(s.channel for s in recording.sent) == ["email", "voice"]
    sms = attempts[1]
    assert sms.result is AttemptResult.unconfirmed
    assert "not resent to avoid a duplicate" in sms.detail


async def test_a_close_out_mid_batch_records_each_message_as_what_it_became(
    sqlite_store: CaseStore,
) -> None:
    slow = _TakesTextsSlowly()
    recording = RecordingProviders()
    activities = await _activities(sqlite_store, dataclasses.replace(recording.bundle(), sms=slow))
    env = ActivityEnvironment()
    running = asyncio.create_task(env.run(activities.send_messages, ROUND_ONE))
    await slow.handed_over.wait()
    await asyncio.sleep(0.05)
    env.cancel()  # the therapist closed the case while the text was being handed over
    attempts = await running

    assert [(a.step, a.result) for a in attempts] == [
        ("client/1/voice", AttemptResult.voicemail),
        ("client/1/sms", AttemptResult.unconfirmed),
        ("client/1/email", AttemptResult.sent),
    ]
    stored = await sqlite_store.attempts_for_case(ROUND_ONE.messages[0].case_id)
    assert {a.step: a.result for a in stored} == {a.step: a.result for a in attempts}
