"""Each path of the procedure on the time-skipping server: what was sent, to whom, when, in what
order, and what was recorded."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from temporalio.testing import WorkflowEnvironment

from models.answers import CaseOutcome
from models.case import AttemptResult, Stage
from store.case_store import CaseStore
from tests import directory_data
from tests.harness import DEFAULT_POLICY, REACHED, Harness, harness

CLIENT_PHONE, CLIENT_EMAIL = "+15555550101", "alex@example.org"
CONTACT_PHONE, CONTACT_EMAIL = "+15555550201", "jordan@example.org"
THERAPIST_EMAIL, THERAPIST_PHONE = "maya.lin@example.org", "+15555550001"


async def test_arrived_during_grace_closes_as_attended_late_without_outreach(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        await time_skipping_env.sleep(timedelta(minutes=10))
        await h.answer(handle, "client_arrived", note="front desk")
        resolution = await handle.result()

    assert resolution.outcome is CaseOutcome.attended_late
    assert h.providers.sent == []
    assert resolution.attempts == []
    assert resolution.fee.charged_cents == 0
    assert resolution.attendance.misses_in_window == 0
    stored = await sqlite_store.get_case(resolution.case_id)
    assert stored is not None and stored.stage is Stage.closed
    assert stored.outcome == "attended_late"


async def test_unreachable_client_escalates_to_emergency_contact_then_therapist_closes(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        start = await time_skipping_env.get_current_time()
        handle = await h.start()
        status = await h.awaiting_close_out(handle)
        await h.answer(handle, "client_reached", **REACHED.model_dump(mode="json"))
        resolution = await handle.result()

    # Channels of a round go out side by side; rounds 30 min and 1 h apart after the 20 min
    # grace, the emergency contact after round 3 plus its 2 h wait, the therapist 1 h later.
    by_minute: dict[int, set[tuple[str, str]]] = {}
    for sent in h.providers.sent:
        by_minute.setdefault(round((sent.at - start).total_seconds() / 60), set()).add(
            (sent.channel, sent.to)
        )
    client_round = {("voice", CLIENT_PHONE), ("sms", CLIENT_PHONE), ("email", CLIENT_EMAIL)}
    assert by_minute == {
        20: client_round,
        50: {("voice", CLIENT_PHONE), ("sms", CLIENT_PHONE)},
        110: client_round,
        230: {("voice", CONTACT_PHONE), ("sms", CONTACT_PHONE), ("email", CONTACT_EMAIL)},
        290: {("email", THERAPIST_EMAIL), ("sms", THERAPIST_PHONE)},
    }
    assert len(h.providers.sent) == 13  # each step exactly once
    # The emergency contact learns nothing about why; the client's texts never say "therapy".
    for sent in h.providers.to(CONTACT_PHONE) + h.providers.to(CONTACT_EMAIL):
        assert "Alex" in sent.body and "contact their provider" in sent.body
        for word in ("therapy", "session", "appointment", "missed"):
            assert word not in sent.body.lower()
    assert all("therapy" not in s.body.lower() for s in h.providers.sent)

    assert status.escalation_level == 3
    assert resolution.outcome is CaseOutcome.reached_safe
    assert resolution.follow_up_plan.startswith("Keep next week's")
    assert resolution.fee.charged_cents == 7500
    first_round = {a.step: a.result for a in resolution.attempts[:3]}
    assert first_round == {
        "client/1/voice": AttemptResult.voicemail,
        "client/1/sms": AttemptResult.sent,
        "client/1/email": AttemptResult.sent,
    }
    assert resolution.emergency_contact_note and "Contacted" in resolution.emergency_contact_note
    # Recorded in the store when it happened, and the resolution outlives Temporal.
    stored_attempts = await sqlite_store.attempts_for_case(resolution.case_id)
    assert sorted(a.step for a in stored_attempts) == sorted(a.step for a in resolution.attempts)
    assert await sqlite_store.get_resolution(resolution.case_id) == resolution


async def test_client_responding_after_first_sms_stops_outreach(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        await h.advance_to(handle, Stage.contacting_client.value)
        while not any(s.channel == "sms" for s in h.providers.sent):
            await time_skipping_env.sleep(timedelta(seconds=1))
        await h.answer(handle, "client_responded", via="sms")
        resolution = await h.close_as_therapist(handle)

    recipients = [s.to for s in h.providers.sent]
    assert CONTACT_PHONE not in recipients and CONTACT_EMAIL not in recipients
    client_sends = [s.channel for s in h.providers.sent if s.to in (CLIENT_PHONE, CLIENT_EMAIL)]
    assert sorted(client_sends) == ["email", "sms", "voice"]  # round 1 only
    assert any("responded via sms" in n.text for n in resolution.notes)


def _sends(h: Harness, *addresses: str) -> list[tuple[str, str]]:
    return [(s.channel, s.to) for s in h.providers.sent if s.to in addresses]


async def test_no_consent_for_emergency_contact_skips_and_documents_why(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start(client_id="C2")
        resolution = await h.close_as_therapist(handle)

    assert _sends(h, CONTACT_PHONE, CONTACT_EMAIL) == []
    assert resolution.emergency_contact_note == (
        "Not contacted: no recorded consent to contact the emergency contact."
    )
    assert any("no recorded consent" in n.text for n in resolution.notes)
    stored_notes = await sqlite_store.notes_for_case(resolution.case_id)
    assert any("no recorded consent" in n.text for n in stored_notes)
    assert len(_sends(h, THERAPIST_EMAIL, THERAPIST_PHONE)) == 2


async def test_no_emergency_contact_and_payer_forbids_fee(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start(client_id="C3")
        resolution = await h.close_as_therapist(handle)  # therapist: charge

    assert resolution.emergency_contact_note == "Not contacted: no emergency contact on file."
    assert resolution.fee.charged_cents == 0
    assert resolution.fee.reason.startswith("payer does not allow no-show fees")


async def test_high_risk_client_reaches_emergency_contact_after_one_round(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        start = await time_skipping_env.get_current_time()
        handle = await h.start(client_id="C5")
        await h.close_as_therapist(handle)

    contact = [s for s in h.providers.sent if s.to == CONTACT_PHONE]
    assert len(_sends(h, CLIENT_PHONE, CLIENT_EMAIL)) == 3  # one round only
    assert round((contact[0].at - start).total_seconds() / 60) == 20 + 30


async def test_invalid_number_is_recorded_and_outreach_moves_to_the_next_channel(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        h.providers.invalid_numbers.add("+15555550199")
        handle = await h.start(client_id="C4")
        resolution = await h.close_as_therapist(handle)

    client_steps = {a.step: a for a in resolution.attempts if a.recipient_role.value == "client"}
    assert {step: a.result for step, a in client_steps.items()} == {
        "client/1/voice": AttemptResult.invalid_recipient,
        "client/1/sms": AttemptResult.invalid_recipient,
        "client/1/email": AttemptResult.sent,
        "client/3/email": AttemptResult.sent,  # round 2 is calls and texts only
    }
    # Tried once, never retried, and never called or texted again in this case.
    assert h.providers.tries.count("voice:+15555550199") == 1
    assert h.providers.tries.count("sms:+15555550199") == 1
    assert "21211" in client_steps["client/1/voice"].detail
    assert any("phone number is not used again" in n.text for n in resolution.notes)


async def test_rate_limited_sms_is_retried_and_sent_once(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        h.providers.transient_failures["sms"] = 2  # 429 twice, then accepted
        handle = await h.start()
        await h.advance_to(handle, Stage.contacting_client.value)
        status = await h.awaiting_close_out(handle)
        await h.answer(handle, "client_reached", **REACHED.model_dump(mode="json"))
        await handle.result()

    first_sms = [t for t in h.providers.tries if t == f"sms:{CLIENT_PHONE}"]
    assert len(first_sms) >= 2 + 3  # two failed tries, then one per round
    assert [a.result for a in status.attempts if a.step == "client/1/sms"] == [AttemptResult.sent]
    assert len([s for s in h.providers.sent if s.channel == "sms" and s.to == CLIENT_PHONE]) == 3


async def test_provider_down_for_good_is_recorded_failed_and_outreach_goes_on(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        h.providers.transient_failures["sms"] = 1000  # SMS provider never recovers
        handle = await h.start(client_id="C3")
        resolution = await h.close_as_therapist(handle)

    steps = {a.step: a for a in resolution.attempts}
    first_sms = steps["client/1/sms"]
    assert first_sms.result is AttemptResult.failed
    assert "gave up after 5m" in first_sms.detail and "provider errors" in first_sms.detail
    # Retried for the policy's message_retry_for (5 min), not longer.
    assert timedelta(minutes=5) <= first_sms.at - steps["client/1/voice"].at < timedelta(minutes=7)
    # The outage on SMS did not hold the call or the email of the same round.
    assert steps["client/1/email"].result is AttemptResult.sent
    assert abs(steps["client/1/email"].at - steps["client/1/voice"].at) < timedelta(seconds=1)
    stored = {a.step: a for a in await sqlite_store.attempts_for_case(resolution.case_id)}
    assert stored["client/1/sms"].result is AttemptResult.failed


async def test_quiet_hours_defer_calls_and_texts_to_the_clients_morning(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    now = await time_skipping_env.get_current_time()
    # A zone where the grace wait ends at 23:xx local time: calls must wait for 08:00 there.
    offset = (23 - (now + timedelta(minutes=20)).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    zone = f"Etc/GMT{-offset:+d}"
    async with harness(time_skipping_env, sqlite_store) as h:
        await sqlite_store.import_directory([], [directory_data.client("C9", time_zone=zone)])
        handle = await h.start(client_id="C9", policy=DEFAULT_POLICY, scheduled_start=now)
        status = await h.advance_to(handle, Stage.contacting_client.value)
        while len(status.deferred) < 2:
            await time_skipping_env.sleep(timedelta(minutes=1))
            status = await h.status(handle)
        while len(h.providers.sent) < 3:
            await time_skipping_env.sleep(timedelta(hours=1))
        await h.answer(handle, "client_responded", via="phone")
        await h.close_as_therapist(handle)

    assert {d.description for d in status.deferred} == {
        "Call to client, round 1 (quiet hours)",
        "SMS to client, round 1 (quiet hours)",
    }
    email, *phone = h.providers.sent[:3]
    # The email went when the grace wait ended; the call and the text waited for 08:00 there.
    assert email.channel == "email" and email.at - now < timedelta(minutes=21)
    assert {p.channel for p in phone} == {"voice", "sms"}
    for sent in phone:
        local = sent.at.astimezone(ZoneInfo(zone))
        assert (local.hour, local.minute) == (8, 0) and sent.at - now > timedelta(hours=8)


async def test_silent_therapist_gets_reminders_then_supervisor(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start(client_id="C3")  # no EC: straight to the therapist
        status = await h.advance_to(handle, Stage.awaiting_therapist.value)
        waiting_since = status.stage_since
        await time_skipping_env.sleep(timedelta(hours=30))
        status = await h.status(handle)
        await h.answer(handle, "client_reached", **REACHED.model_dump(mode="json"))
        resolution = await handle.result()

    therapist_emails = [s for s in h.providers.sent if s.to == THERAPIST_EMAIL]
    hours = [round((s.at - waiting_since).total_seconds() / 3600) for s in therapist_emails]
    assert hours == [0, 4, 8, 12, 16, 20, 24]  # confirmation request + 6 reminders (policy max)
    supervisor = [s for s in h.providers.sent if s.to == "sam.ortiz@example.org"]
    assert len(supervisor) == 1
    assert round((supervisor[0].at - waiting_since).total_seconds() / 3600) == 24
    assert "Dr. Maya Lin" in supervisor[0].body and "Alex" not in supervisor[0].body
    assert status.supervisor_notified and status.escalation_level == 4
    assert resolution.outcome is CaseOutcome.reached_safe  # only the therapist's close-out closes


async def test_acknowledgement_pauses_reminders_then_they_resume(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start(client_id="C3")
        status = await h.advance_to(handle, Stage.awaiting_therapist.value)
        waiting_since = status.stage_since
        await time_skipping_env.sleep(timedelta(hours=2))
        await h.answer(handle, "acknowledged", by="T1")
        stored_at_once = await sqlite_store.notes_for_case(handle.id)
        await time_skipping_env.sleep(timedelta(hours=13))
        status = await h.status(handle)
        await h.answer(handle, "client_reached", **REACHED.model_dump(mode="json"))
        await handle.result()

    therapist_emails = [s for s in h.providers.sent if s.to == THERAPIST_EMAIL]
    hours = [round((s.at - waiting_since).total_seconds() / 3600) for s in therapist_emails]
    assert hours == [0, 10, 14]  # paused 2h -> 10h (8h pause), then every 4h again
    assert stored_at_once[-1].text.startswith("Acknowledged; reminders paused for 8h")
    assert status.stage is Stage.awaiting_therapist
