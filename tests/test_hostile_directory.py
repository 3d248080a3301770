"""Hostile input at the directory CSV import and at the case store, on SQLite and PostgreSQL.

A file is imported whole or not at all: every problem is "line N: column: message", the store
is exactly as it was, and no message shows another client's record. A value the store's columns
cannot hold (too long, a NUL) is refused where it enters, never by the database; and when the
database refuses something all the same, its error names no parameter and no row.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select

from models.case import NoteEntry
from models.directory import ChannelConsent, ClientProfile, Therapist
from models.edge import EDGE
from models.outreach import NoteRecord
from store.case_store import CaseStore
from store.directory_csv import COLUMNS, DirectoryImportError, import_directory_csv
from store.errors import StoreError
from store.schema import ClientTable, TherapistTable
from tests.hostile import (
    ARABIC_DIGITS_PHONE,
    FAST,
    FULLWIDTH_DIGIT_PHONE,
    NASTY_CHARACTERS,
    hostile_text,
    on_loop,
    run_property,
)

# Another client, already in the store: nothing of theirs may ever show in an error.
OTHER = ClientProfile(
    client_id="COTHER",
    first_name="Zebediah",
    last_name="Quartermaine",
    phone="+15555550777",
    email="zebediah.q@example.org",
    time_zone="America/Chicago",
    consent=ChannelConsent(sms=True),
    therapist_id="T1",
)
THERAPIST = Therapist(therapist_id="T1", name="Dr. Maya Lin", email="maya@example.org")
OTHERS_PHI = ("Zebediah", "Quartermaine", "5555550777", "zebediah.q", "Maya Lin", "maya@")

GOOD: dict[str, list[str]] = {
    "record_type": ["client", "therapist", "Client"],
    "id": ["C1", "C2", "T2", "T1"],
    "first_name": ["Alex", "Dr. Robin Park"],
    "last_name": ["", "Kim"],
    "phone": ["", "+15555550101", "+1 (555) 555-0102"],
    "email": ["", "alex@example.org"],
    "time_zone": ["America/New_York", "UTC", ""],
    "consent_voice": ["yes", "no", ""],
    "consent_sms": ["yes", "", "TRUE"],
    "consent_email": ["1", ""],
    "detailed_voicemail_ok": ["", "no"],
    "risk": ["", "high", "elevated"],
    "payer_allows_no_show_fee": ["", "yes"],
    "therapist_id": ["", "T1"],
    "supervisor_id": [""],
    "ec_name": ["", "Jordan"],
    "ec_relationship": ["", "partner"],
    "ec_phone": ["", "+15555550201"],
    "ec_email": [""],
    "ec_consent": ["", "yes"],
}
HOSTILE_CELLS = st.one_of(
    hostile_text.filter(lambda t: "\x00" not in t),  # a NUL: the csv module refuses the file
    st.sampled_from(
        [
            "C" * 65,  # longer than the store's id columns (String(64))
            "T" * 300,
            "N" * 201,  # longer than a name may be
            ARABIC_DIGITS_PHONE,
            FULLWIDTH_DIGIT_PHONE,
            "+15555550101\n",
            "C1\n",
            "America",  # a folder of the zone database, not a zone
            "A" * 300 + "/B",
            "../../etc/passwd",
            "9999-12-31",
            "0001-01-01T00:00:00Z",
            "a@b",
            "x" * 250 + "@example.org",
            "yes\x1b[0m",
            "Alex\u202eevil",
        ]
    ),
)


@st.composite
def directory_files(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    """A header (now and then with a column misspelt, missing or added) and a few rows whose
    cells are mostly fine and sometimes hostile."""
    header = list(COLUMNS)
    change = draw(st.sampled_from(["none"] * 6 + ["misspell", "drop", "add", "duplicate"]))
    if change == "misspell":
        i = draw(st.integers(0, len(header) - 1))
        header[i] = header[i][:-1] + draw(st.sampled_from(["x", "_", " ", "\u200b"]))
    elif change == "drop":
        header.pop(draw(st.integers(0, len(header) - 1)))
    elif change == "add":
        header.append(draw(st.sampled_from(["notes", "Ec_Consent ", "\x1bcol", "c" * 500])))
    elif change == "duplicate":
        header.append(draw(st.sampled_from(header)))
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        row = []
        for column in header:
            good = GOOD.get(column, [""])
            if draw(st.integers(0, 9)) == 0:
                row.append(draw(HOSTILE_CELLS))
            else:
                row.append(draw(st.sampled_from(good)))
        rows.append(row)
    return header, rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


async def _snapshot(store: CaseStore) -> tuple[list[Any], list[Any]]:
    async with store._connect() as conn:
        therapists = (await conn.execute(select(TherapistTable))).all()
        clients = (await conn.execute(select(ClientTable))).all()
    return sorted(map(tuple, therapists)), sorted(map(tuple, clients))


LINE = re.compile(r"^line (\d+): ([^:]+): (.+)$")


async def test_a_hostile_directory_file_is_imported_whole_or_refused_whole(
    case_store: CaseStore, tmp_path: Path
) -> None:
    await case_store.import_directory([THERAPIST], [OTHER])
    loop = asyncio.get_running_loop()
    path = tmp_path / "directory.csv"

    async def check(header: list[str], rows: list[list[str]]) -> None:
        before = await _snapshot(case_store)
        _write(path, header, rows)
        try:
            summary = await import_directory_csv(case_store, path)
        except DirectoryImportError as exc:
            assert await _snapshot(case_store) == before  # nothing half-applied
            assert exc.errors, "a refusal says why"
            for error in exc.errors:
                found = LINE.match(error)
                assert found, error
                assert 1 <= int(found[1]) <= path.read_text().count("\n")  # a physical line
                assert error.isprintable(), error  # one line, no control characters
                assert len(error) < 400, error
            for secret in OTHERS_PHI:
                assert secret not in str(exc)
            return
        imported = summary.therapists + summary.clients
        assert imported == sum(1 for r in rows if any(c.strip() for c in r))
        after = await _snapshot(case_store)
        for therapist_id, record in after[0]:
            assert len(therapist_id) <= 64
            Therapist.model_validate(record)
        for client_id, _therapist, record in after[1]:
            assert len(client_id) <= 64
            profile = ClientProfile.model_validate(record)
            assert profile.phone is None or re.fullmatch(r"\+[0-9]{8,15}", profile.phone)
            assert all(c.isprintable() for c in profile.first_name + profile.last_name)

    @FAST
    @given(directory_files())
    @example(  # found by this property: "America" made zoneinfo raise IsADirectoryError
        (COLUMNS, [["client", "C9", "Alex", *[""] * 3, "America", *[""] * 13]])
    )
    @example((COLUMNS, [["client", "C9\n", "Alex", *[""] * 3, "UTC", *[""] * 13]]))
    @example(([*COLUMNS[:-1], "ec_consnt"], [["therapist", "T9", "Dr. X", "", "", "a@b.org"]]))
    def prop(file: tuple[list[str], list[list[str]]]) -> None:
        on_loop(loop, check(*file))

    await run_property(prop)


def test_ids_and_names_longer_than_the_columns_are_refused_at_the_edge(tmp_path: Path) -> None:
    """The store's id columns are String(64): a longer id never reaches the database."""
    path = _write(
        tmp_path / "d.csv",
        COLUMNS,
        [
            ["therapist", "T" * 65, "Dr. X", "", "", "x@example.org", *[""] * 14],
            ["client", "C" * 200, "N" * 201, "L" * 201, "", "", "UTC", *[""] * 13],
            ["client", "C2", "Alex", "", ARABIC_DIGITS_PHONE, "", "A" * 300, *[""] * 13],
        ],
    )
    with pytest.raises(DirectoryImportError) as raised:
        asyncio.run(import_directory_csv(_NoStore(), path))  # type: ignore[arg-type]
    assert raised.value.errors == [
        "line 2: id: must be 1 to 64 characters: ASCII letters, digits, _ . : -",
        "line 3: id: must be 1 to 64 characters: ASCII letters, digits, _ . : -",
        "line 3: first_name: at most 200 characters (got 201)",
        "line 3: last_name: at most 200 characters (got 201)",
        "line 4: phone: phone number must be in E.164 form with ASCII digits, such as +15551234567",
        "line 4: time_zone: unknown IANA time zone '" + "A" * 64 + "...' (e.g. America/New_York)",
    ]


class _NoStore:
    """Validation fails before the store is asked for anything but the known therapists."""

    async def therapist_ids(self) -> set[str]:
        return set()


# ---------------------------------------------------------------------- the store's own errors
PHI_VALUES = ["Zebediah\x00Quartermaine", "secret-note\x00text", "C" * 65, "Author " * 40]


async def test_a_refusing_database_names_no_parameter_and_no_row(case_store: CaseStore) -> None:
    """Bypassing the edge on purpose: the database refuses (PostgreSQL: a NUL, a value too
    long for its column; SQLite: text that is not UTF-8), and the error is one line of ours,
    with nothing of the rows or the parameters, not even in the chained exceptions."""
    await case_store.import_directory([THERAPIST], [OTHER])
    at = datetime(2026, 11, 23, tzinfo=UTC)
    note = NoteEntry(at=at, author="desk", text="secret-note\x00text")
    attempts = {
        "long_id": lambda: case_store.import_directory(
            [THERAPIST], [OTHER.model_copy(update={"client_id": "C" * 65}), OTHER]
        ),
        "nul_id": lambda: case_store.import_directory(
            [THERAPIST.model_copy(update={"therapist_id": "T\x00"})], [OTHER]
        ),
        "nul_note": lambda: case_store.add_note(NoteRecord(key="k1", case_id="c1", entry=note)),
        "long_author": lambda: case_store.add_note(
            NoteRecord(
                key="k2",
                case_id="c1",
                entry=note.model_copy(
                    update={"author": "Author " * 40, "text": "secret-note text"}
                ),
            )
        ),
        "nul_lookup": lambda: case_store.get_client("Zebediah\x00Quartermaine"),
        "surrogate_lookup": lambda: case_store.get_client("Zebediah\udcffQuartermaine"),
    }
    refused = set()
    for write, attempt in attempts.items():
        try:
            await attempt()
        except StoreError as exc:
            refused.add(write)
            error: BaseException | None = exc
            text = str(exc)
            assert text.startswith("case store error (") and "\n" not in text
            while error is not None:  # nothing chained that a traceback or a log could show
                for secret in (*OTHERS_PHI, *PHI_VALUES, "secret-note", "SELECT", "INSERT"):
                    assert secret not in str(error), (type(error), str(error)[:200])
                error = error.__cause__ or error.__context__
    # SQLite stores what PostgreSQL refuses (a NUL, a long text); neither takes a surrogate.
    if case_store._engine.dialect.name == "sqlite":
        assert refused == {"surrogate_lookup"}
    else:
        assert refused == set(attempts)


async def test_what_the_edge_accepts_the_store_holds(case_store: CaseStore) -> None:
    """A name the edge accepts fits both backends and reads back as it was; what it refuses
    (a NUL, a terminal escape) is said in the edge's words."""
    await case_store.import_directory([THERAPIST], [])
    for n, character in enumerate(NASTY_CHARACTERS):
        data = {**OTHER.model_dump(mode="json"), "client_id": f"C{n}", "last_name": f"K{character}"}
        try:
            client = ClientProfile.model_validate(data, context=EDGE)
        except ValidationError as exc:
            assert "must not contain control characters" in str(exc)
            continue
        await case_store.import_directory([], [client])
        stored = await case_store.get_client(f"C{n}")
        assert stored is not None and stored.last_name == f"K{character}"


async def test_a_stored_record_that_no_longer_fits_is_named_not_printed(
    case_store: CaseStore,
) -> None:
    """A client record written under older rules (here a phone number in Arabic-Indic digits,
    which `\\d` once let through) no longer validates when it is read back. pydantic's message
    would print the whole record, another client's PHI, into a log or a terminal."""
    record = {**OTHER.model_dump(mode="json"), "phone": ARABIC_DIGITS_PHONE}
    async with case_store._begin() as conn:
        await conn.execute(
            ClientTable.__table__.insert().values(
                client_id="COTHER", therapist_id="T1", record=record
            )
        )
    for read in (
        lambda: case_store.get_client("COTHER"),
        lambda: case_store.import_directory([], [OTHER]),  # reads it for its consent changes
    ):
        with pytest.raises(StoreError) as raised:
            await read()
        assert str(raised.value) == "case store: a stored ClientProfile cannot be read (phone)"
        assert raised.value.__context__ is None and raised.value.__cause__ is None
