"""Twilio's inbound SMS webhook with the real case workflow: a reply answers the client's most
recent open case, STOP and START change consent in the directory (and outreach honours it),
HELP gets the contact line, every text is kept; unsigned, tampered and replayed requests get
403 and change nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from models.case import AttemptResult, Stage
from models.directory import Channel
from store.case_store import CaseStore
from tests import directory_data
from tests.harness import Harness, harness
from tests.web_support import post_twilio, sms_params, twilio_signature, web_client

PHONE = "+15555550177"
SMS = "/twilio/sms"


async def _client_c7(h: Harness) -> None:
    await h.store.import_directory([], [directory_data.client("C7", phone=PHONE)])


async def _recorded(h: Harness, *case_ids: str) -> None:
    """Until the cases' first activity has written them to the store."""
    for _ in range(200):
        if all([await h.store.get_case(case_id) for case_id in case_ids]):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("cases never recorded")


async def test_a_reply_answers_the_most_recent_open_case_and_is_kept(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h) as (client, _):
        await _client_c7(h)
        now = await h.env.get_current_time()
        older = await h.start("C7", scheduled_start=now - timedelta(minutes=10))
        newer = await h.start("C7", scheduled_start=now - timedelta(minutes=5))
        await _recorded(h, older.id, newer.id)

        text = "Sorry, overslept. Can you call me?"
        answer = await post_twilio(client, SMS, sms_params("SM1", PHONE, text))

        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/xml")
        assert "<Message>" not in answer.text  # a reply is not answered by text
        status = await h.status(newer)
        assert status.client_responded
        assert [n.text for n in status.notes if "Texted back" in n.text] == [
            f"Client responded via sms. Texted back: {text}"
        ]
        assert not (await h.status(older)).client_responded
        assert any(text in n.text for n in await h.store.notes_for_case(newer.id))
        [kept] = await h.store.inbound_for_client("C7")
        assert (kept.state, kept.kind, kept.case_id, kept.body) == ("done", "reply", newer.id, text)


async def test_unsigned_tampered_foreign_and_replayed_texts_get_403_and_change_nothing(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h) as (client, _):
        await _client_c7(h)
        handle = await h.start("C7")
        await _recorded(h, handle.id)
        params = sms_params("SM2", PHONE, "STOP")
        tampered = {**params, "Body": "I'm fine"}  # signed as STOP, says something else
        foreign = {**params, "AccountSid": "AC" + "1" * 32}

        refused = [
            await post_twilio(client, SMS, params, signature=None),
            await post_twilio(client, SMS, params, signature="not-a-signature"),
            await post_twilio(client, SMS, tampered, signature=twilio_signature(SMS, params)),
            await post_twilio(
                client, SMS, params, signature=twilio_signature(SMS, params, token="other")
            ),
            await post_twilio(client, SMS, foreign),
        ]
        assert [r.status_code for r in refused] == [403] * 5
        assert "STOP" not in "".join(r.text for r in refused)
        record = await h.store.get_client("C7")
        assert record is not None and record.consent.sms and not record.consent_changes
        assert await h.store.inbound_for_client("C7") == []

        first = await post_twilio(client, SMS, sms_params("SM3", PHONE, "On my way"))
        notes_after_first = len((await h.status(handle)).notes)
        again = await post_twilio(client, SMS, sms_params("SM3", PHONE, "On my way"))
        assert (first.status_code, again.status_code) == (200, 403)
        assert len((await h.status(handle)).notes) == notes_after_first
        assert len(await h.store.inbound_for_client("C7")) == 1


async def test_stop_withdraws_sms_consent_and_outreach_stops_texting_start_restores_it(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h) as (client, _):
        await _client_c7(h)
        handle = await h.start("C7")
        await _recorded(h, handle.id)
        stop = await post_twilio(client, SMS, sms_params("SM4", PHONE, " stop "))
        assert stop.status_code == 200 and "<Message>" not in stop.text  # Twilio confirms it
        record = await h.store.get_client("C7")
        assert record is not None and not record.consent.sms
        assert record.consent_changes[-1].channel is Channel.sms
        notes = [n.text for n in (await h.status(handle)).notes]
        assert any("consent to texts is withdrawn" in n for n in notes)

        # The grace wait ends: round 1 calls and emails, and records the text not sent.
        await h.advance_to(handle, Stage.contacting_client.value)
        await h.until_sent(2)
        for _ in range(100):
            attempts = {a.channel: a for a in (await h.status(handle)).attempts}
            if Channel.sms in attempts:
                break
            await h.env.sleep(timedelta(seconds=5))
        sms = attempts[Channel.sms]
        assert sms.result is AttemptResult.failed and "withdrew consent to sms" in sms.detail
        assert [s.channel for s in h.providers.to(PHONE)] == ["voice"]  # called, never texted

        # A re-import of a directory that still says "sms: yes" keeps the withdrawal.
        await _client_c7(h)
        record = await h.store.get_client("C7")
        assert record is not None and not record.consent.sms

        start = await post_twilio(client, SMS, sms_params("SM5", PHONE, "START"))
        assert start.status_code == 200
        record = await h.store.get_client("C7")
        assert record is not None and record.consent.sms
        kinds = [m.kind for m in await h.store.inbound_for_client("C7")]
        assert kinds == ["stop", "start"]


async def test_help_is_answered_with_the_practices_contact_line_and_changes_no_case(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h) as (client, _):
        await _client_c7(h)
        handle = await h.start("C7")
        await _recorded(h, handle.id)
        answer = await post_twilio(client, SMS, sms_params("SM6", PHONE, "help"))
        assert answer.status_code == 200
        assert "<Message>Riverside Practice: to reach us, call +15555550100.</Message>" in (
            answer.text
        )
        assert not (await h.status(handle)).client_responded


async def test_a_text_without_an_open_case_goes_to_the_clients_last_case_or_is_kept(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h) as (client, _):
        await _client_c7(h)
        await h.store.import_directory([], [directory_data.client("C8", phone="+15555550178")])
        handle = await h.start("C7")
        await _recorded(h, handle.id)
        await h.answer(handle, "client_arrived", note="Came in late.")
        await handle.result()

        closed = await post_twilio(client, SMS, sms_params("SM7", PHONE, "Thanks for today"))
        never = await post_twilio(client, SMS, sms_params("SM8", "+15555550178", "Hello?"))
        stranger = await post_twilio(client, SMS, sms_params("SM9", "+15555550999", "Who's this"))

        assert [r.status_code for r in (closed, never, stranger)] == [200, 200, 200]
        resolution = await h.store.get_resolution(handle.id)
        assert resolution is not None
        [addendum] = resolution.addenda
        assert addendum.text == "Client texted after the case closed: Thanks for today"
        [kept] = await h.store.inbound_for_client("C8")
        assert kept.case_id is None and kept.therapist_id == "T1"
        assert "kept for therapist T1" in kept.outcome
        unknown = await h.store.get_inbound("SM9")
        assert unknown is not None and unknown.client_id is None and unknown.state == "done"
        again = await post_twilio(client, SMS, sms_params("SM8", "+15555550178", "Hello?"))
        # The therapist of record is told of both texts no open case took, once each (the
        # retried delivery of SM8 tells nobody again), by id and never with the text.
        for sid in ("SM7", "SM8"):
            notice = h.client.get_workflow_handle(f"client-text-{sid}")
            await notice.result()
        told = [s for s in h.providers.sent if s.to == "maya.lin@example.org"]
        assert again.status_code == 403
        assert sorted(s.subject for s in told) == [
            "Client C7 texted the practice",
            "Client C8 texted the practice",
        ]
        assert all("Thanks for today" not in s.body and "Hello?" not in s.body for s in told)


async def test_a_text_that_could_not_reach_its_case_is_handled_when_twilio_retries(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: CaseStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        await _client_c7(h)
        handle = await h.start("C7")
        await _recorded(h, handle.id)
        params = sms_params("SM10", PHONE, "Call me please")

        monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")  # nothing listens there
        async with web_client(h, temporal=False) as (down, _):
            failed = await post_twilio(down, SMS, params)
        assert failed.status_code == 503
        kept = await h.store.get_inbound("SM10")
        assert kept is not None and kept.state == "received"  # kept, not yet handled

        async with web_client(h) as (client, _):
            retried = await post_twilio(client, SMS, params)
            assert retried.status_code == 200
            assert (await h.status(handle)).client_responded
            assert (await post_twilio(client, SMS, params)).status_code == 403
