"""Twilio's call-status callback: a call's outcome is recorded the moment Twilio reports it
(the ringing call's activity finds it in the store), and calls carry the callback only when
PUBLIC_BASE_URL is one Twilio can reach; unsigned, tampered and replayed callbacks get 403 and
change nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from models.case import AttemptResult, Stage
from models.directory import Channel
from providers.factory import build_providers
from providers.twilio_provider import TwilioVoice
from service.cases import CaseService
from settings import Settings
from store.case_store import CaseStore
from store.rows import AttemptRow
from tests.fake_provider_server import FakeProviderServer
from tests.harness import NO_QUIET_HOURS, Harness, harness
from tests.web_support import (
    ACCOUNT,
    PUBLIC,
    hook_settings,
    post_twilio,
    twilio_signature,
    web_client,
)
from worker import build_worker

STATUS = "/twilio/call-status"


async def _ringing_call(h: Harness, case_id: str) -> AttemptRow:
    key = f"{case_id}/client/1/voice"
    for _ in range(500):
        row = await h.store.get_attempt(key)
        if row is not None and row.state == "accepted":
            return row
        await asyncio.sleep(0.01)
    raise AssertionError("the call was never placed")


def _callback(call_sid: str, status: str, answered_by: str | None = None) -> dict[str, str]:
    params = {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT,
        "CallStatus": status,
        "From": "+15555550100",
        "To": "+15555550101",
        "Direction": "outbound-api",
        "ApiVersion": "2010-04-01",
    }
    if answered_by:
        params["AnsweredBy"] = answered_by
    return params


async def test_the_outcome_twilio_reports_is_recorded_at_once_and_only_once(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h) as (client, _):
        h.providers.call_in_progress = True  # polling alone would never see it end
        handle = await h.start("C1")
        await h.advance_to(handle, Stage.contacting_client.value)
        call = await _ringing_call(h, handle.id)
        assert call.provider_id is not None
        answered = _callback(call.provider_id, "completed", "human")
        busy = _callback(call.provider_id, "busy")

        refused = [
            await post_twilio(client, STATUS, answered, signature=None),
            await post_twilio(client, STATUS, answered, signature=twilio_signature(STATUS, busy)),
            await post_twilio(
                client, STATUS, answered, signature=twilio_signature(STATUS, answered, "x")
            ),
        ]
        assert [r.status_code for r in refused] == [403, 403, 403]
        await asyncio.sleep(0.1)  # the activity polls every 0.01 s: it would have seen a change
        still = await h.store.get_attempt(call.key)
        assert still is not None and still.state == "accepted"

        reported = await post_twilio(client, STATUS, answered)
        assert reported.status_code == 204
        for _ in range(500):
            voice = [a for a in (await h.status(handle)).attempts if a.channel is Channel.voice]
            if voice:
                break
            await asyncio.sleep(0.01)
        assert [(a.result, a.detail) for a in voice] == [
            (AttemptResult.answered, "answered by a person")
        ]

        replayed = await post_twilio(client, STATUS, answered)
        late_busy = await post_twilio(client, STATUS, busy)  # a first busy for this call
        assert (replayed.status_code, late_busy.status_code) == (403, 204)
        final = await h.store.get_attempt(call.key)
        assert final is not None and final.result is AttemptResult.answered  # final stays final
        await h.attempts_recorded(handle.id, 3)


async def test_with_callbacks_the_ringing_call_is_watched_in_the_store_not_at_twilio(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h) as (client, _):
        h.providers.call_in_progress = True
        queue = f"{h.task_queue}-public"
        settings = hook_settings(h.settings, temporal_task_queue=queue)
        assert settings.public_webhook_base() == PUBLIC  # so the worker expects callbacks
        public = CaseService(h.store, settings, h.client)
        async with build_worker(h.client, settings, h.store, h.providers.bundle(), queue):
            now = await h.env.get_current_time()
            opened = await public.open(
                appointment_id="PUB1",
                client_id="C1",
                scheduled_start=now - timedelta(minutes=25),  # the grace wait is over
                policy=NO_QUIET_HOURS,
                now=now,
            )
            h.started.append(opened.case_id)
            call = await _ringing_call(h, opened.case_id)
            polls = h.providers.outcome_polls
            await asyncio.sleep(0.5)  # ~50 looks at the store, a handful of them at Twilio
            assert h.providers.outcome_polls - polls <= 10  # polling Twilio alone: about 50
            assert call.provider_id is not None
            reported = await post_twilio(client, STATUS, _callback(call.provider_id, "no-answer"))
            assert reported.status_code == 204
            status = await h.attempts_recorded(opened.case_id, 3)
            [voice] = [a for a in status.attempts if a.channel is Channel.voice]
            assert (voice.result, voice.detail) == (AttemptResult.no_answer, "no-answer")


@pytest.mark.parametrize(
    ("public", "callback"),
    [
        ("https://outreach.example.org/", "https://outreach.example.org/twilio/call-status"),
        ("http://127.0.0.1:8000", None),
        ("http://localhost:8000", None),
    ],
)
async def test_calls_carry_the_status_callback_only_with_a_public_url(
    public: str, callback: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TWILIO_EDGE", "TWILIO_REGION"):
        monkeypatch.delenv(name, raising=False)
    async with FakeProviderServer() as fake:
        settings = Settings(
            twilio_account_sid=ACCOUNT,
            twilio_auth_token=SecretStr("token"),
            twilio_from_number="+15555550100",
            twilio_api_base_url=fake.base_url,
            public_base_url=public,
        )
        providers = build_providers(settings)
        assert isinstance(providers.voice, TwilioVoice)
        try:
            await providers.voice.start_call("+15555550101", "Hello")
        finally:
            await providers.aclose()
        [placed] = fake.calls()
    assert placed.form.get("StatusCallback") == callback
    assert placed.form.get("StatusCallbackMethod") == ("POST" if callback else None)
