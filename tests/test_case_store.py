"""The case store on SQLite and on the real PostgreSQL server: every write idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from models.case import (
    AttemptResult,
    AttendanceReview,
    FeeAssessment,
    NoteEntry,
    Purpose,
    RecipientRole,
    Resolution,
    Stage,
)
from models.directory import Channel
from models.outreach import NoteRecord, OpenCaseRequest, OutreachRequest, StageChange
from models.signals import CaseOutcome
from store.case_store import CaseStore
from store.directory_csv import DirectoryImportError, import_directory_csv
from tests import directory_data

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=ZoneInfo("America/New_York"))
CASE = "missed-session-A1"


def _open(at: datetime = T0) -> OpenCaseRequest:
    return OpenCaseRequest(
        case_id=CASE,
        appointment_id="A1",
        client_id="C1",
        therapist_id="T1",
        scheduled_start=T0,
        policy_name="standard",
        opened_at=at,
    )


def _request(step: str) -> OutreachRequest:
    return OutreachRequest(
        case_id=CASE,
        appointment_id="A1",
        step=step,
        channel=Channel.sms,
        recipient_role=RecipientRole.client,
        purpose=Purpose.client_outreach,
        round=1,
        client_id="C1",
        therapist_id="T1",
        scheduled_start=T0,
    )


async def test_directory_round_trip_with_nested_contact(case_store: CaseStore) -> None:
    await case_store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    assert await case_store.get_client("C1") == directory_data.CLIENTS[0]
    assert await case_store.get_therapist("T1") == directory_data.THERAPIST
    changed = directory_data.client("C1", first_name="Alexandra")
    await case_store.import_directory([], [changed])
    client = await case_store.get_client("C1")
    assert client is not None and client.first_name == "Alexandra"
    assert await case_store.client_ids() == {"C1", "C2", "C3", "C4", "C5"}
    assert await case_store.get_client("nobody") is None


async def test_case_opens_once_and_stage_moves_only_on_change(case_store: CaseStore) -> None:
    await case_store.open_case(_open())
    await case_store.open_case(_open(T0 + timedelta(hours=1)))  # replayed: changes nothing
    row = await case_store.get_case(CASE)
    assert row is not None and row.opened_at == T0 and row.stage is Stage.grace_wait
    assert row.scheduled_start.tzinfo is not None and row.scheduled_start == T0
    later = T0 + timedelta(minutes=20)
    await case_store.set_stage(StageChange(case_id=CASE, stage=Stage.contacting_client, at=later))
    await case_store.set_stage(
        StageChange(case_id=CASE, stage=Stage.contacting_client, at=later + timedelta(hours=1))
    )
    row = await case_store.get_case(CASE)
    assert row is not None and (row.stage, row.stage_since) == (Stage.contacting_client, later)
    assert [c.case_id for c in await case_store.list_cases()] == [CASE]


async def test_attempt_lifecycle_is_final_once_done(case_store: CaseStore) -> None:
    request = _request("client/1/sms")
    row = await case_store.start_attempt(request, T0)
    assert row.state == "sending" and row.started_at == T0
    await case_store.mark_accepted(request.key, "SM1")
    assert (await case_store.get_attempt(request.key)).state == "accepted"  # type: ignore[union-attr]
    first = await case_store.finish_attempt(request.key, AttemptResult.sent, "", "SM1", False, T0)
    again = await case_store.finish_attempt(
        request.key, AttemptResult.failed, "late retry", None, False, T0 + timedelta(minutes=5)
    )
    await case_store.mark_retryable(request.key, "429")
    assert first.result is AttemptResult.sent and again == first
    assert (await case_store.get_attempt(request.key)).state == "done"  # type: ignore[union-attr]
    unfinished = _request("client/1/email")
    await case_store.start_attempt(unfinished, T0)
    assert [a.step for a in await case_store.attempts_for_case(CASE)] == ["client/1/sms"]


async def test_notes_are_idempotent_by_key(case_store: CaseStore) -> None:
    entry = NoteEntry(at=T0, author="desk", text="called the front desk")
    record = NoteRecord(case_id=CASE, key=f"{CASE}/note/1", entry=entry)
    await case_store.add_note(record)
    await case_store.add_note(record)
    assert await case_store.notes_for_case(CASE) == [entry]


async def test_missed_sessions_in_window(case_store: CaseStore) -> None:
    await case_store.record_attendance("A0", "C1", T0 - timedelta(days=100), "no_show")
    await case_store.record_attendance("A1", "C1", T0 - timedelta(days=30), "no_show")
    await case_store.record_attendance("A2", "C1", T0 - timedelta(days=7), "no_show")
    await case_store.record_attendance("A2", "C1", T0 - timedelta(days=7), "attended_late")
    await case_store.record_attendance("A3", "C2", T0 - timedelta(days=3), "no_show")
    await case_store.record_attendance("A4", "C1", T0, "no_show")
    misses = await case_store.missed_sessions("C1", T0 - timedelta(days=90), T0)
    assert misses == [T0 - timedelta(days=30), T0]


async def test_resolution_is_kept_and_closes_the_case(case_store: CaseStore) -> None:
    await case_store.open_case(_open())
    closed = T0 + timedelta(hours=5)
    resolution = Resolution(
        case_id=CASE,
        appointment_id="A1",
        client_id="C1",
        therapist_id="T1",
        scheduled_start=T0.astimezone(UTC),
        policy_name="standard",
        opened_at=T0.astimezone(UTC),
        closed_at=closed.astimezone(UTC),
        outcome=CaseOutcome.rescheduled,
        closed_by="T1",
        note="Reached; rescheduled to Friday.",
        follow_up_plan="Discuss attendance next session.",
        fee=FeeAssessment(
            policy_fee_cents=7500,
            currency="USD",
            payer_allows_fee=True,
            therapist_decision=None,
            reason="waived",
            charged_cents=0,
        ),
        attendance=AttendanceReview(window_days=90, misses_in_window=2, threshold=2),
        attendance_flagged=True,
        attempts=[],
        notes=[],
        rejected_signals=[],
        emergency_contact_note=None,
        dry_run=False,
    )
    await case_store.save_resolution(resolution)
    await case_store.save_resolution(resolution)
    assert await case_store.get_resolution(CASE) == resolution
    row = await case_store.get_case(CASE)
    assert row is not None and row.stage is Stage.closed and row.outcome == "rescheduled"
    assert row.closed_at == closed
    assert await case_store.list_cases(open_only=True) == []
    assert len(await case_store.list_cases(open_only=False)) == 1


async def test_sample_directory_imports(case_store: CaseStore) -> None:
    summary = await import_directory_csv(case_store, "samples/directory.csv")
    assert (summary.therapists, summary.clients) == (2, 3)
    robin = await case_store.get_client("C200")
    assert robin is not None and robin.emergency_contact is not None
    assert not robin.emergency_contact.consent_to_contact and robin.risk == "high"


HEADER = Path("samples/directory.csv").read_text().splitlines()[0]


async def test_bad_csv_reports_every_bad_row_and_imports_nothing(
    case_store: CaseStore, tmp_path: Path
) -> None:
    good = (
        "client,C1,Alex,,+15555550101,a@example.org,America/New_York,"
        "yes,yes,yes,no,standard,yes,T1,,,,,,"
    )
    rows = [
        HEADER,
        "therapist,T1,Dr. A,,+15555550001,t@example.org,,,,,,,,,,,,,,",  # line 2: fine
        good,  # line 3: fine
        good.replace("C1", "C2").replace("+15555550101", "555-0101"),  # 4: bad phone
        good.replace("C1", "C3").replace("America/New_York", "Mars/Base"),  # 5: bad zone
        good.replace("C1", "C4").replace("standard", "extreme"),  # 6: bad risk
        good.replace("client,C1", "patient,C5"),  # 7: unknown record type
        good,  # 8: duplicate id
        good.replace("C1", "C6").replace("yes,yes,yes,no", "maybe,yes,yes,no"),  # 9: boolean
    ]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DirectoryImportError) as err:
        await import_directory_csv(case_store, path)
    lines = [e.split(":")[0] for e in err.value.errors]
    assert lines == [f"line {n}" for n in (4, 5, 6, 7, 8, 9)]
    assert "E.164" in err.value.errors[0] and "IANA" in err.value.errors[1]
    assert await case_store.client_ids() == set() and await case_store.therapist_ids() == set()


async def test_unknown_therapist_reference_rejects_the_file(
    case_store: CaseStore, tmp_path: Path
) -> None:
    await case_store.import_directory([directory_data.SUPERVISOR], [])
    path = tmp_path / "refs.csv"
    path.write_text(
        "\n".join(
            [
                HEADER,
                "therapist,T9,Dr. B,,+15555550009,b@example.org,,,,,,,,,S1,,,,,",  # S1 in store
                "client,C9,Sam,,+15555550109,s@example.org,UTC,yes,,,,,,T404,,,,,,",
            ]
        )
        + "\n"
    )
    with pytest.raises(DirectoryImportError) as err:
        await import_directory_csv(case_store, path)
    assert err.value.errors == ["line 3: therapist_id: unknown therapist 'T404'"]
    assert await case_store.therapist_ids() == {"S1"}
