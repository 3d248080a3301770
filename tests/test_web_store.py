"""The web service's store records on SQLite and PostgreSQL: integration events claimed once
(by id and by meaning), consent restored only after a withdrawal, a call or an email finished
only while it is awaited, suppressed addresses, handled-request receipts, a sender's cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.case import AttemptResult, case_id_for
from models.directory import Channel
from models.outreach import OpenCaseRequest
from store import CaseStore
from store.web_records import EventClaim
from tests import directory_data
from tests.directory_data import outreach_request

T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


async def test_an_event_is_claimed_once_by_its_id_and_by_its_meaning(case_store: CaseStore) -> None:
    first = await case_store.claim_event("ehr/e1", "no_show/A1", T0)
    in_flight = await case_store.claim_event("ehr/e1", "no_show/A1", T0)
    same_meaning = await case_store.claim_event("ehr/e2", "no_show/A1", T0)
    assert (first.state, in_flight.state, same_meaning.state) == ("new", "pending", "pending")

    await case_store.finish_event("ehr/e1", {"result": "opened"})
    done = EventClaim("done", {"result": "opened"})
    assert await case_store.claim_event("ehr/e1", None, T0) == done
    assert (await case_store.claim_event("ehr/e9", "no_show/A1", T0)).answer == {"result": "opened"}

    await case_store.claim_event("ehr/e3", "checked_in/A1", T0)
    await case_store.release_event("ehr/e3")  # failed half-way: a retry may act
    assert (await case_store.claim_event("ehr/e3", "checked_in/A1", T0)).state == "new"


async def test_start_restores_only_a_withdrawn_consent(case_store: CaseStore) -> None:
    never = directory_data.client(
        "C9", consent=directory_data.ALL.model_copy(update={"sms": False})
    )
    await case_store.import_directory(directory_data.THERAPISTS, [directory_data.client(), never])
    assert not await case_store.restore_consent("C9", Channel.sms, T0, "START")
    assert not await case_store.restore_consent("C1", Channel.sms, T0, "START")  # never withdrawn

    assert await case_store.withdraw_consent("C1", Channel.sms, T0, "STOP")
    assert await case_store.restore_consent("C1", Channel.sms, T0 + timedelta(hours=1), "START")
    client = await case_store.get_client("C1")
    assert client is not None and client.consent.sms
    assert [c.granted for c in client.consent_changes] == [False, True]
    await case_store.import_directory([], [directory_data.client()])  # a re-import keeps it
    assert (await case_store.get_client("C1")).consent.sms  # type: ignore[union-attr]


async def test_a_call_or_an_email_is_finished_only_while_awaited(case_store: CaseStore) -> None:
    call = outreach_request("client/1/voice", Channel.voice)
    email = outreach_request("client/1/email", Channel.email)
    for request in (call, email):
        await case_store.start_attempt(request, T0)
    await case_store.mark_accepted(call.key, "CA1")
    await case_store.mark_accepted(email.key, "msg1")
    await case_store.finish_attempt(email.key, AttemptResult.sent, "", "msg1", False, T0)

    assert await case_store.finish_call("CA1", AttemptResult.busy, "", T0) == call.key
    assert await case_store.finish_call("CA1", AttemptResult.answered, "", T0) is None
    assert (await case_store.get_attempt(call.key)).result is AttemptResult.busy  # type: ignore[union-attr]
    assert await case_store.finish_call("msg1", AttemptResult.busy, "", T0) is None  # not a call

    assert await case_store.fail_email("msg1", AttemptResult.failed, "bounced", T0) == email.key
    assert await case_store.fail_email("msg1", AttemptResult.failed, "again", T0) is None
    row = await case_store.get_attempt(email.key)
    assert row is not None and (row.result, row.detail) == (AttemptResult.failed, "bounced")
    assert await case_store.fail_email("CA1", AttemptResult.failed, "x", T0) is None


async def test_suppressions_receipts_and_a_senders_cases(case_store: CaseStore) -> None:
    await case_store.suppress_email(" Alex@Example.org ", "SendGrid bounce", T0)
    await case_store.suppress_email("alex@example.org", "SendGrid spamreport", T0)
    assert await case_store.email_suppression("ALEX@example.org") == "SendGrid bounce"
    assert await case_store.email_suppression("jordan@example.org") is None

    assert await case_store.add_receipt("sendgrid/abc", T0)
    assert not await case_store.add_receipt("sendgrid/abc", T0)
    assert await case_store.has_receipt("sendgrid/abc")

    await case_store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    sharing = await case_store.clients_with_phone("+15555550101")
    assert [c.client_id for c in sharing] == ["C1", "C2", "C3", "C5"]  # C4 has its own
    for appointment, start in (("A1", T0), ("A2", T0 + timedelta(days=7))):
        await case_store.open_case(
            OpenCaseRequest(
                case_id=case_id_for(appointment),
                appointment_id=appointment,
                client_id="C2",
                therapist_id="T1",
                scheduled_start=start,
                policy_name="default",
                opened_at=start,
            )
        )
    cases = await case_store.cases_of_clients(c.client_id for c in sharing)
    assert [c.appointment_id for c in cases] == ["A2", "A1"]  # the most recent session first

    await case_store.record_inbound("SM1", T0, "+15555550101", "hi", "reply", "C1", "T1")
    await case_store.record_inbound("SM1", T0, "+15555550101", "changed", "reply", "C1", "T1")
    await case_store.finish_inbound("SM1", cases[0].case_id, "answered")
    [kept] = await case_store.inbound_for_client("C1")
    assert (kept.body, kept.state, kept.case_id) == ("hi", "done", cases[0].case_id)
