"""The directory CSV import: every problem reported with its line, nothing of a bad file applied."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from models.directory import ChannelConsent, RiskLevel
from store import CaseStore
from store.directory_csv import (
    COLUMNS,
    DirectoryImportError,
    ImportSummary,
    import_directory_csv,
    parse_directory_csv,
)
from tests import directory_data

SAMPLE = Path(__file__).parent.parent / "samples" / "directory.csv"


def _therapist(therapist_id: str = "T1", **cells: str) -> dict[str, str]:
    row = {
        "record_type": "therapist",
        "id": therapist_id,
        "first_name": "Dr. Maya Lin",
        "phone": "+15555550001",
        "email": "maya.lin@example.org",
    }
    return row | cells


def _client(client_id: str = "C1", **cells: str) -> dict[str, str]:
    row = {
        "record_type": "client",
        "id": client_id,
        "first_name": "Alex",
        "last_name": "Kim",
        "phone": "+15555550101",
        "email": "alex@example.org",
        "time_zone": "America/New_York",
        "consent_voice": "yes",
        "consent_sms": "yes",
        "consent_email": "yes",
        "risk": "standard",
        "payer_allows_no_show_fee": "yes",
        "therapist_id": "T1",
    }
    return row | cells


def _write(tmp_path: Path, rows: list[dict[str, str]], columns: list[str] = COLUMNS) -> Path:
    """A CSV file: the header is line 1, rows[i] is line i + 2."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "directory.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _errors(path: Path) -> list[str]:
    with pytest.raises(DirectoryImportError) as raised:
        parse_directory_csv(path)
    return raised.value.errors


# ---------------------------------------------------------------------- the sample file
def test_sample_directory_parses() -> None:
    therapists, clients = parse_directory_csv(SAMPLE)
    by_id = {t.therapist_id: t for t in therapists}
    assert by_id["T100"].name == "Dr. Maya Lin" and by_id["T100"].supervisor_id == "T200"
    assert by_id["T200"].name == "Dr. Sam Ortiz" and by_id["T200"].supervisor_id is None
    alex, robin, casey = sorted(clients, key=lambda c: c.client_id)
    assert {c.therapist_id for c in clients} == {"T100"}

    assert (alex.first_name, alex.risk, alex.time_zone) == ("Alex", "standard", "America/New_York")
    assert alex.consent == ChannelConsent(voice=True, sms=True, email=True)
    assert alex.emergency_contact is not None and alex.emergency_contact.consent_to_contact
    assert (alex.emergency_contact.name, alex.emergency_contact.relationship) == (
        "Jordan Rivera",
        "partner",
    )

    assert robin.risk is RiskLevel.high
    assert robin.consent == ChannelConsent(voice=False, sms=True, email=True)
    assert robin.emergency_contact is not None and not robin.emergency_contact.consent_to_contact

    assert casey.risk is RiskLevel.elevated and casey.emergency_contact is None
    assert casey.consent == ChannelConsent(voice=True, sms=True, email=True)
    assert casey.payer_allows_no_show_fee is False  # Medicaid


async def test_sample_directory_imports_idempotently(case_store: CaseStore) -> None:
    summary = await import_directory_csv(case_store, SAMPLE)
    assert summary == ImportSummary(therapists=2, clients=3)
    assert await import_directory_csv(case_store, SAMPLE) == summary
    _, clients = parse_directory_csv(SAMPLE)
    for client in clients:
        assert await case_store.get_client(client.client_id) == client
    assert await case_store.therapist_ids() == {"T100", "T200"}


# ---------------------------------------------------------------------- cells
def test_booleans_and_empty_cells(tmp_path: Path) -> None:
    cells = {
        "consent_voice": "Yes",
        "consent_sms": "1",
        "consent_email": "",
        "detailed_voicemail_ok": "TRUE",
        "payer_allows_no_show_fee": "",
        "risk": "",
        "phone": "",
        "last_name": "",
        "ec_consent": "yes",  # no ec_name: no emergency contact
    }
    therapists, clients = parse_directory_csv(_write(tmp_path, [_therapist(), _client(**cells)]))
    (client,) = clients
    assert client.consent == ChannelConsent(voice=True, sms=True, email=False)
    assert client.detailed_voicemail_ok is True
    assert client.payer_allows_no_show_fee is False  # empty means no: no fee unless allowed
    assert client.risk is RiskLevel.standard
    assert (client.phone, client.last_name, client.emergency_contact) == (None, "", None)
    assert therapists[0].supervisor_id is None


def test_quoting_bom_column_order_and_short_rows(tmp_path: Path) -> None:
    columns = list(reversed(COLUMNS))
    rows = [_therapist(first_name="Lin, Maya"), _client(ec_name="Jordan", ec_relationship="x")]
    path = _write(tmp_path, rows, columns)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # as spreadsheet apps save it
    therapists, clients = parse_directory_csv(path)
    assert therapists[0].name == "Lin, Maya" and clients[0].emergency_contact is not None

    header = ",".join(COLUMNS)
    short = "therapist,T1,Dr. A,,,a@example.org"  # trailing empty cells left out
    path.write_text(f"{header}\n{short}\n\n")
    assert [t.therapist_id for t in parse_directory_csv(path)[0]] == ["T1"]


# ---------------------------------------------------------------------- rejected files
def test_every_bad_row_is_reported_with_its_line(tmp_path: Path) -> None:
    rows = [
        _therapist(),  # 2: fine
        _client("C1"),  # 3: fine
        _client("C2", phone="555-0101"),  # 4
        _client("C3", time_zone="Mars/Base", risk="extreme"),  # 5: two problems
        _client("C4", record_type="patient"),  # 6
        _client("C1"),  # 7: duplicate
        _client("C5", consent_voice="maybe"),  # 8
        _client("C6", ec_name="Jordan", ec_relationship="partner", ec_phone="12"),  # 9
        _client("C7", ec_phone="+15555550201"),  # 10: a contact without a name
        _therapist("T2", email="", time_zone="UTC"),  # 11: two problems
        _client("C8", supervisor_id="T1"),  # 12
    ]
    errors = _errors(_write(tmp_path, rows))
    assert errors[0] == (
        "line 4: phone: phone number must be in E.164 form with ASCII digits, such as +15551234567"
    )
    assert [e.split(": ")[:2] for e in errors] == [
        ["line 4", "phone"],
        ["line 5", "time_zone"],
        ["line 5", "risk"],
        ["line 6", "record_type"],
        ["line 7", "id"],
        ["line 8", "consent_voice"],
        ["line 9", "ec_phone"],
        ["line 10", "ec_name"],
        ["line 11", "time_zone"],
        ["line 11", "email"],
        ["line 12", "supervisor_id"],
    ]
    assert "IANA" in errors[1] and "'elevated'" in errors[2]
    assert errors[3] == "line 6: record_type: expected therapist or client, got 'patient'"
    assert errors[4] == "line 7: id: client 'C1' is also on line 3"
    assert errors[5].endswith("got 'maybe'")
    assert errors[9] == "line 11: email: required"
    assert errors[10] == "line 12: supervisor_id: not used for a client row; leave it empty"


def test_header_problems(tmp_path: Path) -> None:
    columns = [c for c in COLUMNS if c not in ("risk", "ec_consent")]
    assert _errors(_write(tmp_path, [], columns)) == [
        "line 1: risk: missing column",
        "line 1: ec_consent: missing column",
    ]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert _errors(empty) == ["line 1: header: the file has no header row"]


def test_misaligned_and_undecodable_rows(tmp_path: Path) -> None:
    header = ",".join(COLUMNS)
    path = tmp_path / "bad.csv"
    path.write_text(f"{header}\ntherapist,T1,Dr. Lin, Maya,,,a@example.org{',' * 14}\n")
    (error,) = _errors(path)
    assert error.startswith("line 2: row: 21 cells but the header has 20")
    path.write_bytes(f"{header}\n".encode() + "therapist,T1,Dr. Lin\n".encode("utf-16"))
    assert _errors(path) == ["line 2: file: not UTF-8 text (save it as CSV UTF-8)"]


async def test_a_bad_file_applies_nothing(case_store: CaseStore, tmp_path: Path) -> None:
    await case_store.import_directory([directory_data.THERAPIST], [])
    rows = [
        _therapist("T1", first_name="Dr. Renamed"),  # valid on its own
        _therapist("T2", supervisor_id="T1"),
        _client("C1"),
        _client("C2", email="not-an-email"),
    ]
    with pytest.raises(DirectoryImportError) as raised:
        await import_directory_csv(case_store, _write(tmp_path, rows))
    assert [e.split(": ")[:2] for e in raised.value.errors] == [["line 5", "email"]]
    assert await case_store.get_therapist("T1") == directory_data.THERAPIST  # not renamed
    assert await case_store.therapist_ids() == {"T1"}
    assert await case_store.client_ids() == set()


async def test_references_must_exist_in_file_or_store(
    case_store: CaseStore, tmp_path: Path
) -> None:
    await case_store.import_directory([directory_data.SUPERVISOR], [])  # S1
    rows = [
        _therapist("T1", supervisor_id="S1"),  # 2: fine, S1 is in the store
        _therapist("T2", supervisor_id="T9"),  # 3: unknown
        _therapist("T3", supervisor_id="T3"),  # 4: themselves
        _client("C1", therapist_id="T2"),  # 5: fine, T2 is in the file
        _client("C2", therapist_id="T404"),  # 6: unknown
        _client("C3", phone="bad"),  # 7: a row problem, reported together
        _therapist("T4", email="bad"),  # 8: an invalid row...
        _client("C4", therapist_id="T4"),  # 9: ...is still a known id (reported once)
    ]
    with pytest.raises(DirectoryImportError) as raised:
        await import_directory_csv(case_store, _write(tmp_path, rows))
    errors = raised.value.errors
    assert errors[:3] == [
        "line 3: supervisor_id: unknown therapist 'T9'",
        "line 4: supervisor_id: a therapist cannot supervise themselves",
        "line 6: therapist_id: unknown therapist 'T404'",
    ]
    assert [e.split(": ")[:2] for e in errors[3:]] == [["line 7", "phone"], ["line 8", "email"]]
    assert await case_store.therapist_ids() == {"S1"}
    assert await case_store.client_ids() == set()

    good = [_therapist("T1", supervisor_id="S1"), _client("C1", therapist_id="S1")]
    summary = await import_directory_csv(case_store, _write(tmp_path, good))
    assert summary == ImportSummary(therapists=1, clients=1)


async def test_values_that_do_not_fit_are_rejected_with_line_and_column(
    case_store: CaseStore, tmp_path: Path
) -> None:
    rows = [
        _therapist("T1"),
        _client("C" * 65),  # 3: longer than the store's id column
        _client("C2", first_name="Al\x00ex"),  # 4: a NUL (PostgreSQL cannot store it)
        _client("C3", last_name="Kim\x1b[2J"),  # 5: a terminal escape
        _client(
            "C4", phone="+\u0661\u0665\u0665\u0665\u0665\u0665\u0665\u0660\u0661\u0660\u0661"
        ),  # 6: Arabic-Indic digits
        _client("C5", ec_name="J" * 201, ec_relationship="partner"),  # 7: too long
    ]
    with pytest.raises(DirectoryImportError) as raised:
        await import_directory_csv(case_store, _write(tmp_path, rows))
    assert [e.split(": ")[:2] for e in raised.value.errors] == [
        ["line 3", "id"],
        ["line 4", "first_name"],
        ["line 5", "last_name"],
        ["line 6", "phone"],
        ["line 7", "ec_name"],
    ]
    assert "at most 64" in raised.value.errors[0] or "1 to 64" in raised.value.errors[0]
    assert "control characters" in raised.value.errors[1]
    assert "ASCII digits" in raised.value.errors[3]
    assert await case_store.client_ids() == set()


async def test_a_record_stored_under_older_rules_still_loads(case_store: CaseStore) -> None:
    old = directory_data.client("C1").model_copy(update={"last_name": "K" * 300})
    await case_store.import_directory([], [old])  # written without the edge checks
    loaded = await case_store.get_client("C1")
    assert loaded is not None and loaded.last_name == "K" * 300
