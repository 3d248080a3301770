"""The case store on SQLite and on the real PostgreSQL server: every write idempotent, every
datetime read back timezone-aware in UTC."""

from __future__ import annotations

import asyncio
import traceback
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from models.case import (
    AttemptResult,
    NoteEntry,
    RecipientRole,
    Resolution,
    Stage,
)
from models.directory import Channel
from models.outreach import NoteRecord, OpenCaseRequest, StageChange
from store import CaseStore
from store.errors import StoreError
from tests import directory_data
from tests.directory_data import outreach_request

NEW_YORK = ZoneInfo("America/New_York")
T0 = datetime(2026, 11, 23, 15, 0, tzinfo=NEW_YORK)  # 20:00 UTC
CASE = "missed-session-A1"


def _open(appointment_id: str = "A1", at: datetime = T0) -> OpenCaseRequest:
    return OpenCaseRequest(
        case_id=f"missed-session-{appointment_id}",
        appointment_id=appointment_id,
        client_id="C1",
        therapist_id="T1",
        scheduled_start=T0,
        policy_name="standard",
        opened_at=at,
    )


def _resolution(closed_at: datetime) -> Resolution:
    return directory_data.resolution(CASE, T0, closed_at)


def _is_utc(moment: datetime | None) -> bool:
    return moment is not None and moment.utcoffset() == timedelta(0) and moment.tzinfo is UTC


# ---------------------------------------------------------------------- directory
async def test_directory_round_trip_keeps_contact_and_consent(case_store: CaseStore) -> None:
    await case_store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    for expected in directory_data.CLIENTS:
        assert await case_store.get_client(expected.client_id) == expected
    c2 = await case_store.get_client("C2")
    assert c2 is not None and c2.emergency_contact is not None
    assert c2.emergency_contact.consent_to_contact is False and c2.consent.voice is True
    assert await case_store.get_therapist("T1") == directory_data.THERAPIST
    assert await case_store.client_ids() == {"C1", "C2", "C3", "C4", "C5"}
    assert await case_store.therapist_ids() == {"T1", "S1"}
    assert await case_store.get_client("nobody") is None
    assert await case_store.get_therapist("nobody") is None

    await case_store.import_directory([], [directory_data.client("C1", emergency_contact=None)])
    updated = await case_store.get_client("C1")
    assert updated is not None and updated.emergency_contact is None  # upserted by id


async def test_an_email_several_clients_share_maps_to_none_of_them(
    case_store: CaseStore,
) -> None:
    clients = [
        directory_data.client("C1", email="Family@Example.org"),
        directory_data.client("C2", email="family@example.org "),
        directory_data.client("C3", email="jo@example.org"),
    ]
    await case_store.import_directory(directory_data.THERAPISTS, clients)
    ids, shared = await case_store.client_ids_by_email()
    assert ids == {"jo@example.org": "C3"}
    assert shared == {"family@example.org"}


async def test_directory_import_is_one_transaction(case_store: CaseStore) -> None:
    broken = directory_data.client("C9").model_copy(update={"client_id": None})  # no validation
    with pytest.raises(StoreError):  # the second client violates the primary key
        await case_store.import_directory(
            directory_data.THERAPISTS, [*directory_data.CLIENTS, broken]
        )
    assert await case_store.therapist_ids() == set()
    assert await case_store.client_ids() == set()


async def test_failed_writes_leave_no_transaction_open_on_a_pooled_connection(
    case_store: CaseStore,
) -> None:
    """More failed write transactions than the pool holds connections, then writes and reads
    on every connection: each failure was rolled back when its call ended (on SQLite the pool
    sends no ROLLBACK of its own when a connection comes back), so none holds a lock or a
    half-written row that a later call would meet."""
    broken = directory_data.client("C9").model_copy(update={"client_id": None})
    for _ in range(12):
        with pytest.raises(StoreError):
            await case_store.import_directory(
                directory_data.THERAPISTS, [*directory_data.CLIENTS, broken]
            )
    assert await case_store.client_ids() == set()
    await asyncio.gather(*(case_store.open_case(_open(f"A{n}")) for n in range(12)))
    await case_store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    assert len(await case_store.list_cases()) == 12
    assert await case_store.client_ids() == {c.client_id for c in directory_data.CLIENTS}


# ---------------------------------------------------------------------- cases
async def test_open_case_is_idempotent(case_store: CaseStore) -> None:
    await case_store.open_case(_open())
    await case_store.open_case(_open(at=T0 + timedelta(hours=1)))  # replayed: changes nothing
    row = await case_store.get_case(CASE)
    assert row is not None
    assert (row.stage, row.stage_since, row.opened_at) == (Stage.grace_wait, T0, T0)
    assert (row.appointment_id, row.client_id, row.therapist_id) == ("A1", "C1", "T1")
    assert row.closed_at is None and row.outcome is None
    assert await case_store.get_case("missed-session-nope") is None


async def test_stage_moves_only_on_change_and_never_reopens(case_store: CaseStore) -> None:
    await case_store.open_case(_open())
    later = T0 + timedelta(minutes=20)
    await case_store.set_stage(StageChange(case_id=CASE, stage=Stage.contacting_client, at=later))
    same = StageChange(case_id=CASE, stage=Stage.contacting_client, at=later + timedelta(hours=1))
    await case_store.set_stage(same)
    row = await case_store.get_case(CASE)
    assert row is not None and (row.stage, row.stage_since) == (Stage.contacting_client, later)

    closed_at = T0 + timedelta(hours=5)
    await case_store.save_resolution(_resolution(closed_at))
    late = StageChange(case_id=CASE, stage=Stage.awaiting_therapist, at=T0 + timedelta(hours=6))
    await case_store.set_stage(late)  # a timed-out activity attempt finishing late
    row = await case_store.get_case(CASE)
    assert row is not None and (row.stage, row.stage_since) == (Stage.closed, closed_at)


async def test_list_cases_open_only_ordered_by_opening(case_store: CaseStore) -> None:
    await case_store.open_case(_open("A2", at=T0 + timedelta(minutes=5)))
    await case_store.open_case(_open("A1", at=T0))
    await case_store.open_case(_open("A3", at=T0 + timedelta(minutes=10)))
    assert [c.appointment_id for c in await case_store.list_cases()] == ["A1", "A2", "A3"]
    await case_store.save_resolution(_resolution(T0 + timedelta(hours=1)))  # closes A1
    assert [c.appointment_id for c in await case_store.list_cases()] == ["A2", "A3"]
    every = await case_store.list_cases(open_only=False)
    assert [c.appointment_id for c in every] == ["A1", "A2", "A3"]


# ---------------------------------------------------------------------- attempts
async def test_attempt_lifecycle_and_final_result(case_store: CaseStore) -> None:
    request = outreach_request("client/1/voice", Channel.voice)
    row = await case_store.start_attempt(request, T0)
    assert (row.key, row.state, row.started_at, row.result) == (request.key, "sending", T0, None)
    assert (row.channel, row.recipient_role, row.round) == (Channel.voice, RecipientRole.client, 1)

    await case_store.mark_accepted(request.key, "CA1")  # the call is ringing
    accepted = await case_store.get_attempt(request.key)
    assert accepted is not None and (accepted.state, accepted.provider_id) == ("accepted", "CA1")

    done_at = T0 + timedelta(minutes=2)
    first = await case_store.finish_attempt(
        request.key, AttemptResult.voicemail, "left after the beep", "CA1", False, done_at
    )
    assert (first.result, first.at, first.provider_id) == (AttemptResult.voicemail, done_at, "CA1")
    again = await case_store.finish_attempt(
        request.key, AttemptResult.failed, "late retry", None, True, done_at + timedelta(hours=1)
    )
    assert again == first

    # A finished attempt is final: nothing later changes it.
    await case_store.mark_retryable(request.key, "429")
    await case_store.mark_accepted(request.key, "CA2")
    assert not await case_store.claim_attempt(request, T0, "try-9", accepted)
    restarted = await case_store.start_attempt(request, T0 + timedelta(hours=2))
    assert restarted.state == "done" and restarted.provider_id == "CA1"
    assert restarted.finished_at == done_at and restarted.started_at == T0
    assert await case_store.attempts_for_case(CASE) == [first]


async def test_a_result_is_recorded_in_one_call_whether_or_not_the_message_has_a_row(
    case_store: CaseStore,
) -> None:
    never_sent = outreach_request("client/1/voice", Channel.voice)
    claimed = outreach_request("client/1/sms")
    assert await case_store.claim_attempt(claimed, T0, "try-1", None)
    later = T0 + timedelta(minutes=1)

    no_row = await case_store.record_result(
        never_sent, AttemptResult.invalid_recipient, "no voice address on file", None, False, later
    )
    assert (no_row.result, no_row.at, no_row.detail) == (
        AttemptResult.invalid_recipient,
        later,
        "no voice address on file",
    )
    row = await case_store.get_attempt(never_sent.key)
    assert row is not None and (row.state, row.started_at) == ("done", later)

    sent = await case_store.record_result(claimed, AttemptResult.sent, "", "SM1", False, later)
    row = await case_store.get_attempt(claimed.key)
    assert row is not None and (row.state, row.started_at, row.claim) == ("done", T0, "try-1")
    # Final is final: a second result (a retried activity) returns the first unchanged.
    again = await case_store.record_result(
        claimed, AttemptResult.failed, "late", None, False, later + timedelta(hours=1)
    )
    assert again == sent and sent.provider_id == "SM1"
    recorded = {a.step: a for a in await case_store.attempts_for_case(CASE)}
    assert recorded == {no_row.step: no_row, sent.step: sent}


async def test_results_racing_for_a_message_without_a_row_record_one(
    case_store: CaseStore,
) -> None:
    """Eight tries record a result for the same never-sent message at once (on PostgreSQL
    their inserts meet): one result is recorded, and every try returns that one."""
    request = outreach_request("client/1/voice", Channel.voice)
    details = [f"try {n}" for n in range(8)]
    results = await asyncio.gather(
        *(
            case_store.record_result(request, AttemptResult.failed, d, None, False, T0)
            for d in details
        )
    )
    [recorded] = await case_store.attempts_for_case(CASE)
    assert all(result == recorded for result in results) and recorded.detail in details


async def test_retryable_attempt_can_be_sent_again(case_store: CaseStore) -> None:
    request = outreach_request("client/1/sms")
    await case_store.start_attempt(request, T0)
    await case_store.mark_retryable(request.key, "HTTP 429 Too Many Requests")
    row = await case_store.get_attempt(request.key)
    assert row is not None and (row.state, row.detail) == ("retry", "HTTP 429 Too Many Requests")
    assert await case_store.claim_attempt(request, T0 + timedelta(seconds=30), "try-2", row)
    row = await case_store.get_attempt(request.key)
    assert row is not None and row.state == "sending" and row.started_at == T0  # first kept
    assert await case_store.attempts_for_case(CASE) == []  # unfinished: not in the timeline


async def test_of_two_tries_claiming_one_message_only_one_may_send(
    case_store: CaseStore,
) -> None:
    request = outreach_request("client/1/sms")
    assert await case_store.claim_attempt(request, T0, "try-1", None)
    assert not await case_store.claim_attempt(request, T0, "try-2", None)  # both saw no row
    await case_store.mark_retryable(request.key, "HTTP 503")
    seen = await case_store.get_attempt(request.key)
    assert seen is not None and seen.claim == "try-1"
    claims = [await case_store.claim_attempt(request, T0, f"try-{n}", seen) for n in (3, 4)]
    assert claims == [True, False]  # both saw `retry`: the first to claim it sends
    row = await case_store.get_attempt(request.key)
    assert row is not None and (row.state, row.claim) == ("sending", "try-3")


async def test_of_tries_claiming_one_message_at_the_same_moment_exactly_one_wins(
    case_store: CaseStore,
) -> None:
    """The claim is the statement's own write (RETURNING), not a read after it: tries racing
    on separate connections, on a new row and on a refused one, get one winner each time."""
    request = outreach_request("client/1/email")
    won = await asyncio.gather(
        *(case_store.claim_attempt(request, T0, f"new-{n}", None) for n in range(8))
    )
    assert sorted(won) == [False] * 7 + [True]
    await case_store.mark_retryable(request.key, "HTTP 429")
    seen = await case_store.get_attempt(request.key)
    assert seen is not None and seen.state == "retry"
    won = await asyncio.gather(
        *(case_store.claim_attempt(request, T0, f"again-{n}", seen) for n in range(8))
    )
    assert sorted(won) == [False] * 7 + [True]
    row = await case_store.get_attempt(request.key)
    assert row is not None and row.state == "sending"
    assert row.claim == f"again-{won.index(True)}"
    finished = await case_store.finish_attempt(
        request.key, AttemptResult.sent, "", "SG1", False, T0
    )
    again = await case_store.finish_attempt(
        request.key, AttemptResult.failed, "late", None, False, T0
    )
    assert finished == again and finished.result is AttemptResult.sent  # the first result stands


async def test_the_close_out_finishes_every_attempt_left_unfinished(
    case_store: CaseStore,
) -> None:
    refused = outreach_request("client/1/sms")
    claimed = outreach_request("client/1/email", Channel.email)
    texted = outreach_request("client/2/sms")
    calling = outreach_request("client/2/voice", Channel.voice)
    done = outreach_request("client/3/sms")
    for request in (refused, claimed, texted, calling, done):
        await case_store.start_attempt(request, T0)
    await case_store.mark_retryable(refused.key, "HTTP 429")
    await case_store.mark_accepted(texted.key, "SM1")
    await case_store.mark_accepted(calling.key, "CA1")
    final = await case_store.finish_attempt(done.key, AttemptResult.sent, "", "SM2", False, T0)
    closed_at = T0 + timedelta(minutes=5)
    other_case = outreach_request("client/1/sms", appointment_id="A2")
    await case_store.start_attempt(other_case, T0)

    assert await case_store.finish_abandoned_attempts(CASE, closed_at) == 4
    attempts = {a.step: a for a in await case_store.attempts_for_case(CASE)}
    results = {step: (a.result, a.provider_id) for step, a in attempts.items()}
    assert results == {
        "client/1/sms": (AttemptResult.failed, None),  # refused: nothing went out
        "client/1/email": (AttemptResult.unconfirmed, None),  # claimed, never answered
        "client/2/sms": (AttemptResult.sent, "SM1"),  # the provider had taken it
        "client/2/voice": (AttemptResult.unconfirmed, "CA1"),  # its outcome never came
        "client/3/sms": (AttemptResult.sent, "SM2"),
    }
    assert attempts["client/3/sms"] == final  # a finished attempt is left as it was
    assert "nothing went out" in attempts["client/1/sms"].detail
    assert attempts["client/1/email"].at == closed_at
    assert await case_store.finish_abandoned_attempts(CASE, closed_at) == 0  # idempotent
    row = await case_store.get_attempt(other_case.key)
    assert row is not None and row.state == "sending"  # another case's rows are not touched


async def test_attempts_listed_in_finish_order(case_store: CaseStore) -> None:
    slow, quick = (
        outreach_request("client/1/voice", Channel.voice),
        outreach_request("client/1/sms"),
    )
    await case_store.start_attempt(slow, T0)
    await case_store.start_attempt(quick, T0 + timedelta(seconds=1))
    await case_store.finish_attempt(
        quick.key, AttemptResult.sent, "", "SM1", False, T0 + timedelta(seconds=2)
    )
    await case_store.finish_attempt(
        slow.key, AttemptResult.no_answer, "", "CA1", False, T0 + timedelta(minutes=1)
    )
    await case_store.start_attempt(outreach_request("client/1/email", Channel.email), T0)
    attempts = await case_store.attempts_for_case(CASE)
    assert [a.step for a in attempts] == ["client/1/sms", "client/1/voice"]
    assert await case_store.attempts_for_case("missed-session-other") == []


async def test_unknown_attempt(case_store: CaseStore) -> None:
    assert await case_store.get_attempt(f"{CASE}/client/9/sms") is None
    await case_store.mark_accepted(f"{CASE}/client/9/sms", "SM9")  # no row: nothing to change
    with pytest.raises(LookupError):
        await case_store.finish_attempt(
            f"{CASE}/client/9/sms", AttemptResult.sent, "", None, False, T0
        )


# ---------------------------------------------------------------------- notes
async def test_notes_are_idempotent_by_key(case_store: CaseStore) -> None:
    second = NoteEntry(at=T0 + timedelta(minutes=5), author="T1", text="called back")
    first = NoteEntry(at=T0, author="desk", text="front desk called")
    await case_store.add_note(NoteRecord(case_id=CASE, key=f"{CASE}/note/2", entry=second))
    await case_store.add_note(NoteRecord(case_id=CASE, key=f"{CASE}/note/1", entry=first))
    replay = first.model_copy(update={"text": "changed on replay"})
    await case_store.add_note(NoteRecord(case_id=CASE, key=f"{CASE}/note/1", entry=replay))
    assert await case_store.notes_for_case(CASE) == [first, second]
    assert await case_store.notes_for_case("missed-session-other") == []


# ---------------------------------------------------------------------- attendance
async def test_attendance_upsert_and_missed_sessions_window(case_store: CaseStore) -> None:
    since, until = T0 - timedelta(days=90), T0
    await case_store.record_attendance("A0", "C1", since - timedelta(seconds=1), "no_show")
    await case_store.record_attendance("A1", "C1", since, "no_show")  # bounds are inclusive
    await case_store.record_attendance("A2", "C1", T0 - timedelta(days=7), "no_show")
    await case_store.record_attendance("A2", "C1", T0 - timedelta(days=7), "attended_late")
    await case_store.record_attendance("A3", "C1", T0 - timedelta(days=3), "attended")
    await case_store.record_attendance("A4", "C2", T0 - timedelta(days=3), "no_show")
    await case_store.record_attendance("A5", "C1", until, "no_show")
    await case_store.record_attendance("A5", "C1", until, "no_show")
    await case_store.record_attendance("A6", "C1", until + timedelta(seconds=1), "no_show")
    misses = await case_store.missed_sessions("C1", since, until)
    assert misses == [since, until] and all(_is_utc(m) for m in misses)
    with pytest.raises(ValueError):
        await case_store.record_attendance("A7", "C1", T0, "cancelled")


async def test_attendance_keeps_the_strongest_evidence_whatever_came_last(
    case_store: CaseStore,
) -> None:
    """The case opens on a presumed no-show, the calendar then reports the session cancelled
    late, the close-out reviews again: the late cancellation is not overwritten by no_show,
    and a client who came after all is never turned back into a miss."""
    start = T0 - timedelta(days=1)
    await case_store.record_attendance("A1", "C1", start, "no_show")
    await case_store.record_attendance("A1", "C1", start, "late_cancelled")
    await case_store.record_attendance("A1", "C1", start, "no_show")
    await case_store.record_attendance("A2", "C1", start, "attended_late")
    await case_store.record_attendance("A2", "C1", start, "late_cancelled")
    await case_store.record_attendance("A2", "C1", start, "no_show")
    since = T0 - timedelta(days=90)
    assert await case_store.missed_sessions("C1", since, T0) == []
    late = await case_store.missed_sessions("C1", since, T0, status="late_cancelled")
    assert late == [start]


# ---------------------------------------------------------------------- resolutions
async def test_resolution_round_trip_closes_the_case(case_store: CaseStore) -> None:
    await case_store.open_case(_open())
    closed_at = T0 + timedelta(hours=5)
    resolution = _resolution(closed_at)
    await case_store.save_resolution(resolution)
    await case_store.save_resolution(resolution)  # a retried activity
    assert await case_store.get_resolution(CASE) == resolution
    assert await case_store.get_resolution("missed-session-other") is None
    row = await case_store.get_case(CASE)
    assert row is not None
    assert (row.stage, row.stage_since, row.closed_at) == (Stage.closed, closed_at, closed_at)
    assert row.outcome == "rescheduled" and row.opened_at == T0
    assert await case_store.list_cases(open_only=True) == []


async def test_resolution_without_case_row_still_records_the_case(case_store: CaseStore) -> None:
    await case_store.save_resolution(_resolution(T0 + timedelta(hours=1)))
    row = await case_store.get_case(CASE)
    assert row is not None and row.stage is Stage.closed and row.client_id == "C1"


# ---------------------------------------------------------------------- time zones
async def test_datetimes_read_back_aware_in_utc(case_store: CaseStore) -> None:
    plus_five = timezone(timedelta(hours=5, minutes=30))
    opened = T0.astimezone(plus_five)
    await case_store.open_case(_open(at=opened))
    request = outreach_request("client/1/sms")
    await case_store.start_attempt(request, opened)
    await case_store.finish_attempt(request.key, AttemptResult.sent, "", "SM1", False, opened)
    await case_store.add_note(
        NoteRecord(case_id=CASE, key=f"{CASE}/note/1", entry=NoteEntry(at=T0, author="a", text="b"))
    )
    case = await case_store.get_case(CASE)
    attempt = await case_store.get_attempt(request.key)
    assert case is not None and attempt is not None
    moments: list[datetime | None] = [case.scheduled_start, case.stage_since, case.opened_at]
    moments += [attempt.started_at, attempt.finished_at]
    moments += [(await case_store.attempts_for_case(CASE))[0].at]
    moments += [(await case_store.notes_for_case(CASE))[0].at]
    assert all(_is_utc(m) for m in moments)
    assert all(m == T0 for m in moments)  # the same instant, whatever zone it was given in
    assert case.scheduled_start.hour == 20

    naive = _open("A9", at=datetime(2026, 11, 23, 15, 0))
    with pytest.raises(StoreError, match="timezone-aware"):
        await case_store.open_case(naive)


async def test_from_url_creates_the_sqlite_directory(tmp_path: Path) -> None:
    store = CaseStore.from_url(f"sqlite+aiosqlite:///{tmp_path}/new/dir/cases.db")
    try:
        await store.create_schema()
        await store.create_schema()  # idempotent
        assert (tmp_path / "new" / "dir" / "cases.db").exists()
    finally:
        await store.close()


async def test_store_errors_never_quote_rows_or_parameters(case_store: CaseStore) -> None:
    """Driver messages quote parameters (asyncpg: "invalid input for query argument $1:
    {...}"); none of it may reach a terminal, a log or Temporal's history."""
    secret = {"name": "Zelda Quartermaine", "phone": "+15555559876"}
    broken = directory_data.client("C9").model_copy(update={"client_id": secret})
    with pytest.raises(StoreError) as raised:
        await case_store.import_directory([], [broken])
    shown = "".join(traceback.format_exception(raised.value))
    assert "Zelda" not in shown and "5559876" not in shown
    assert str(raised.value).startswith("case store error (")
    assert await case_store.client_ids() == set()


async def test_withdrawn_consent_is_recorded_and_survives_a_reimport(case_store: CaseStore) -> None:
    await case_store.import_directory(directory_data.THERAPISTS, [directory_data.client("C1")])
    at = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert await case_store.withdraw_consent("C1", Channel.sms, at, "carrier opt-out, case X")
    assert not await case_store.withdraw_consent("C1", Channel.sms, at, "carrier opt-out, case X")
    assert not await case_store.withdraw_consent("nobody", Channel.sms, at, "x")
    await case_store.import_directory([], [directory_data.client("C1")])  # the file says yes
    client = await case_store.get_client("C1")
    assert client is not None and not client.consent.sms and client.consent.voice
    assert [(c.channel, c.granted, c.at, c.source) for c in client.consent_changes] == [
        (Channel.sms, False, at, "carrier opt-out, case X")
    ]
    assert client.reachable_channels() == [Channel.voice, Channel.email]


async def test_an_addendum_is_added_to_a_closed_cases_resolution(case_store: CaseStore) -> None:
    resolution = _resolution(T0 + timedelta(hours=2))
    await case_store.save_resolution(resolution)
    entry = NoteEntry(at=resolution.closed_at + timedelta(days=1), author="T1", text="Late note")
    assert await case_store.add_addendum(resolution.case_id, entry)
    assert await case_store.add_addendum(resolution.case_id, entry)  # same entry: kept once
    assert not await case_store.add_addendum("missed-session-none", entry)
    stored = await case_store.get_resolution(resolution.case_id)
    assert stored is not None and stored.addenda == [entry]
    notes = await case_store.notes_for_case(resolution.case_id)
    assert [n.text for n in notes if n.author == "T1"] == ["Late note"]


async def test_a_case_ended_outside_the_procedure_is_closed_as_terminated(
    case_store: CaseStore,
) -> None:
    await case_store.open_case(_open("A7"))
    at = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert await case_store.mark_ended_outside("missed-session-A7", "TERMINATED", at)
    assert not await case_store.mark_ended_outside("missed-session-A7", "TERMINATED", at)
    case = await case_store.get_case("missed-session-A7")
    assert case is not None and (case.stage, case.outcome, case.closed_at) == (
        Stage.closed,
        "terminated",
        at,
    )
    notes = await case_store.notes_for_case("missed-session-A7")
    assert "TERMINATED" in notes[0].text


# ---------------------------------------------------------------------- calendar sessions
async def test_the_calendar_sweeps_records_on_both_backends(case_store: CaseStore) -> None:
    """What the sweep keeps about sessions: first values kept, the start of the case taken
    when one opens, absence set and cleared, a voided late cancellation, re-keyed sessions."""
    start, moved = T0 - timedelta(hours=1), T0 + timedelta(hours=2)
    cal = "cal.front.a1"
    await case_store.mark_session(cal, "front", start, late_cancellation_at=T0)
    await case_store.record_attendance(cal, "C1", start, "late_cancelled")
    await case_store.mark_session(cal, "front", moved, late_cancellation_at=T0 + timedelta(1))
    await case_store.open_case(_open(cal).model_copy(update={"scheduled_start": moved}))
    await case_store.mark_session(cal, "front", moved, case_opened_at=T0)
    await case_store.set_absence(cal, T0)
    known = (await case_store.known_sessions([cal, "cal.front.none"]))[cal]
    assert (known.scheduled_start, known.client_id, known.absent_since) == (moved, "C1", T0)
    assert known.case_open and known.late_cancellation_recorded

    await case_store.set_absence(cal, None)
    await case_store.forget_cancellation(cal)
    known = (await case_store.known_sessions([cal]))[cal]
    assert known.absent_since is None and not known.late_cancellation_recorded
    since = T0 - timedelta(days=30)
    assert await case_store.missed_sessions("C1", since, T0, status="late_cancelled") == []
    assert await case_store.missed_sessions("C1", since, T0) == [start]  # the case's no-show
    assert await case_store.calendar_case_at("front", "C1", moved) == f"missed-session-{cal}"
    assert await case_store.calendar_case_at("fro", "C1", moved) is None
    assert await case_store.open_calendar_sessions("front", T0, T0 + timedelta(hours=3)) == [cal]
