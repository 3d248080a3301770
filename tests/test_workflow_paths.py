"""Each path of the procedure on the time-skipping server: what was sent, to whom, when, in what
order, and what was recorded."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from models.case import AttemptResult, Stage
from models.signals import CaseOutcome, ClientReached, FeeChoice, FeeDecision
from store.case_store import CaseStore
from tests.harness import harness
from workflows.missed_session import MissedSessionWorkflow

CLIENT_PHONE, CLIENT_EMAIL = "+15555550101", "alex@example.org"
CONTACT_PHONE, CONTACT_EMAIL = "+15555550201", "jordan@example.org"
THERAPIST_EMAIL, THERAPIST_PHONE = "maya.lin@example.org", "+15555550001"

REACHED = ClientReached(
    outcome=CaseOutcome.reached_safe,
    note="Spoke with client; overslept, is safe.",
    follow_up_plan="Keep next week's session; add a reminder text the day before.",
    fee=FeeDecision(decision=FeeChoice.charge, reason="per signed cancellation policy"),
)


async def test_arrived_during_grace_closes_as_attended_late_without_outreach(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        await time_skipping_env.sleep(timedelta(minutes=10))
        await handle.signal(MissedSessionWorkflow.client_arrived, {"note": "front desk"})
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
        status = await h.advance_to(handle, Stage.awaiting_therapist.value)
        await handle.signal(MissedSessionWorkflow.client_reached, REACHED)
        resolution = await handle.result()

    order = [(s.channel, s.to) for s in h.providers.sent]
    client_round = [("voice", CLIENT_PHONE), ("sms", CLIENT_PHONE), ("email", CLIENT_EMAIL)]
    assert order == [
        *client_round,
        ("voice", CLIENT_PHONE),
        ("sms", CLIENT_PHONE),
        *client_round,
        ("voice", CONTACT_PHONE),
        ("sms", CONTACT_PHONE),
        ("email", CONTACT_EMAIL),
        ("email", THERAPIST_EMAIL),
        ("sms", THERAPIST_PHONE),
    ]
    # When: first contact after the 20 min grace; rounds 30 min and 1 h apart; EC after round 3
    # plus its 2 h wait.
    minutes = [round((s.at - start).total_seconds() / 60) for s in h.providers.sent]
    assert minutes[0] == 20 and minutes[3] == 50 and minutes[5] == 110
    assert minutes[8] == 230 and minutes[11] == 290
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
    assert [a.result for a in resolution.attempts][:3] == [
        AttemptResult.voicemail,
        AttemptResult.sent,
        AttemptResult.sent,
    ]
    assert resolution.emergency_contact_note and "Contacted" in resolution.emergency_contact_note
    # Recorded in the store when it happened, and the resolution outlives Temporal.
    stored_attempts = await sqlite_store.attempts_for_case(resolution.case_id)
    assert [a.step for a in stored_attempts] == [a.step for a in resolution.attempts]
    assert await sqlite_store.get_resolution(resolution.case_id) == resolution


async def test_client_responding_after_first_sms_stops_outreach(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        await h.advance_to(handle, Stage.contacting_client.value)
        while not any(s.channel == "sms" for s in h.providers.sent):
            await time_skipping_env.sleep(timedelta(seconds=1))
        await handle.signal(MissedSessionWorkflow.client_responded, {"via": "sms"})
        await h.advance_to(handle, Stage.awaiting_therapist.value)
        await handle.signal(MissedSessionWorkflow.client_reached, REACHED)
        resolution = await handle.result()

    recipients = [s.to for s in h.providers.sent]
    assert CONTACT_PHONE not in recipients and CONTACT_EMAIL not in recipients
    client_sends = [s.channel for s in h.providers.sent if s.to in (CLIENT_PHONE, CLIENT_EMAIL)]
    assert client_sends in (["voice", "sms"], ["voice", "sms", "email"])
    assert any("responded via sms" in n.text for n in resolution.notes)
