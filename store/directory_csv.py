"""Load therapists and clients from one CSV file, all or nothing.

One UTF-8 file with a header row (line 1); column order does not matter, every column below
must be present, and no other (a misspelt one is named, not silently ignored). `record_type`
says what a row is; cells a row type does not use must be empty.

    column                    therapist row                    client row
    record_type               therapist                        client
    id                        therapist id (e.g. T100)         client id (e.g. C100)
    first_name                display name ("Dr. Maya Lin")    first name
    last_name                 (empty)                          last name (optional)
    phone                     E.164, optional                  E.164, e.g. +15555550101
    email                     required                         optional
    time_zone                 (empty)                          IANA zone, e.g. America/New_York
    consent_voice, consent_sms, consent_email                  consent per channel
    detailed_voicemail_ok     (empty)                          messages may name the session
    risk                      (empty)                          standard (default) | elevated | high
    payer_allows_no_show_fee  (empty)                          no for Medicaid and similar plans
    therapist_id              (empty)                          the client's therapist
    supervisor_id             the supervising therapist        (empty)
    ec_name, ec_relationship, ec_phone, ec_email, ec_consent   the client's emergency contact

Empty cells mean "none". Booleans accept yes/no, true/false, 1/0; empty means no, so a client
without recorded consent is not contacted on that channel, and no fee is charged unless the
payer is known to allow it. An emergency contact exists only if `ec_name` is filled in; it is
contacted only with `ec_consent = yes`. `therapist_id` and `supervisor_id` must name a
therapist in the same file or already in the case store.

Every problem is reported as "line N: column: message" (the header is line 1), all of them at
once, and nothing of a file with a problem is imported.
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from models.directory import ClientProfile, Therapist
from models.edge import EDGE
from store.case_store import CaseStore

log = logging.getLogger(__name__)

RecordType = Literal["therapist", "client"]

COLUMNS = [
    "record_type",
    "id",
    "first_name",
    "last_name",
    "phone",
    "email",
    "time_zone",
    "consent_voice",
    "consent_sms",
    "consent_email",
    "detailed_voicemail_ok",
    "risk",
    "payer_allows_no_show_fee",
    "therapist_id",
    "supervisor_id",
    "ec_name",
    "ec_relationship",
    "ec_phone",
    "ec_email",
    "ec_consent",
]
_USED_BY: dict[RecordType, set[str]] = {
    "therapist": {"record_type", "id", "first_name", "phone", "email", "supervisor_id"},
    "client": set(COLUMNS) - {"supervisor_id"},
}
_RECORD_TYPES: dict[str, RecordType] = {"therapist": "therapist", "client": "client"}
_TRUE = {"yes", "y", "true", "1"}
_FALSE = {"no", "n", "false", "0", ""}

# Where a pydantic error location points in the file: model field path -> CSV column.
_COLUMN_OF: dict[RecordType, dict[tuple[str, ...], str]] = {
    "therapist": {("therapist_id",): "id", ("name",): "first_name"},
    "client": {
        ("client_id",): "id",
        ("consent", "voice"): "consent_voice",
        ("consent", "sms"): "consent_sms",
        ("consent", "email"): "consent_email",
        ("emergency_contact", "name"): "ec_name",
        ("emergency_contact", "relationship"): "ec_relationship",
        ("emergency_contact", "phone"): "ec_phone",
        ("emergency_contact", "email"): "ec_email",
        ("emergency_contact", "consent_to_contact"): "ec_consent",
    },
}


class DirectoryImportError(Exception):
    """The file was rejected; `errors` holds every problem as "line N: column: message"."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class ImportSummary(BaseModel):
    therapists: int
    clients: int


@dataclass(frozen=True)
class _Problem:
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.message}"


@dataclass
class _Parsed:
    therapists: list[Therapist] = field(default_factory=list)
    clients: list[ClientProfile] = field(default_factory=list)
    line_of: dict[tuple[RecordType, str], int] = field(default_factory=dict)  # every id seen
    problems: list[_Problem] = field(default_factory=list)

    def error(self) -> DirectoryImportError:
        ordered = sorted(self.problems, key=lambda p: p.line)  # stable: row order kept
        return DirectoryImportError([str(p) for p in ordered])


def parse_directory_csv(path: str | Path) -> tuple[list[Therapist], list[ClientProfile]]:
    """Read and validate every row; raise DirectoryImportError listing all bad rows.

    References between rows are checked by `import_directory_csv`, which also knows the store.
    """
    parsed = _parse(Path(path))
    if parsed.problems:
        raise parsed.error()
    return parsed.therapists, parsed.clients


async def import_directory_csv(store: CaseStore, path: str | Path) -> ImportSummary:
    """Validate the file and its references, then upsert it in one transaction (or nothing)."""
    parsed = _parse(Path(path))
    known = {i for kind, i in parsed.line_of if kind == "therapist"} | await store.therapist_ids()
    for therapist in parsed.therapists:
        line = parsed.line_of[("therapist", therapist.therapist_id)]
        if therapist.supervisor_id == therapist.therapist_id:
            parsed.problems.append(
                _Problem(line, "supervisor_id", "a therapist cannot supervise themselves")
            )
        elif therapist.supervisor_id and therapist.supervisor_id not in known:
            message = f"unknown therapist {therapist.supervisor_id!r}"
            parsed.problems.append(_Problem(line, "supervisor_id", message))
    for client in parsed.clients:
        if client.therapist_id and client.therapist_id not in known:
            line = parsed.line_of[("client", client.client_id)]
            message = f"unknown therapist {client.therapist_id!r}"
            parsed.problems.append(_Problem(line, "therapist_id", message))
    if parsed.problems:
        raise parsed.error()
    await store.import_directory(parsed.therapists, parsed.clients)
    summary = ImportSummary(therapists=len(parsed.therapists), clients=len(parsed.clients))
    log.info("directory imported", extra=summary.model_dump())  # counts only, no PHI
    return summary


def _parse(path: Path) -> _Parsed:
    parsed = _Parsed()
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # tolerate the byte-order mark spreadsheet apps write
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = f"line {line}: file: not UTF-8 text (save it as CSV UTF-8)"
        raise DirectoryImportError([message]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    if not any(header):
        parsed.problems.append(_Problem(1, "header", "the file has no header row"))
        return parsed
    for column in COLUMNS:
        if column not in header:
            parsed.problems.append(_Problem(1, column, "missing column"))
    for column in {c for c in header if header.count(c) > 1}:
        parsed.problems.append(_Problem(1, _shown(column), "column appears more than once"))
    for column in dict.fromkeys(c for c in header if c and c not in COLUMNS):
        # A misspelt column ("consnt_sms") must not be read as "no consent" without a word.
        guess = difflib.get_close_matches(column.lower(), COLUMNS, n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        parsed.problems.append(_Problem(1, _shown(column), f"unknown column{hint}"))
    if parsed.problems:
        return parsed
    while True:
        line = reader.line_num + 1  # where this row starts, even if a quoted cell spans lines
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            parsed.problems.append(_Problem(line, "row", f"not valid CSV: {exc}"))
            break
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if len(cells) > len(header):
            message = f"{len(cells)} cells but the header has {len(header)} (an unquoted comma?)"
            parsed.problems.append(_Problem(line, "row", message))
            continue
        _parse_row(dict(zip(header, (c.strip() for c in cells), strict=False)), line, parsed)
    return parsed


def _parse_row(row: dict[str, str], line: int, parsed: _Parsed) -> None:
    """Validate one row into `parsed`; short rows read as if their last cells were empty."""
    kind = _RECORD_TYPES.get(row.get("record_type", "").lower())
    if kind is None:
        message = f"expected therapist or client, got '{_shown(row.get('record_type', ''))}'"
        parsed.problems.append(_Problem(line, "record_type", message))
        return
    record_id = row.get("id", "")
    if record_id and (kind, record_id) in parsed.line_of:
        message = (
            f"{kind} '{_shown(record_id)}' is also on line {parsed.line_of[(kind, record_id)]}"
        )
        parsed.problems.append(_Problem(line, "id", message))
        return
    if record_id:
        parsed.line_of[(kind, record_id)] = line
    issues = [
        (column, f"not used for a {kind} row; leave it empty")
        for column in COLUMNS
        if row.get(column) and column not in _USED_BY[kind]
    ]
    data = _therapist_data(row) if kind == "therapist" else _client_data(row, issues)
    model: type[Therapist | ClientProfile] = Therapist if kind == "therapist" else ClientProfile
    record: Therapist | ClientProfile | None = None
    try:
        record = model.model_validate(data, context=EDGE)
    except ValidationError as exc:
        issues += [(_column(kind, e["loc"]), _message(e["msg"])) for e in exc.errors()]
    if issues or record is None:
        parsed.problems += [_Problem(line, column, message) for column, message in issues]
    elif isinstance(record, Therapist):
        parsed.therapists.append(record)
    else:
        parsed.clients.append(record)


def _therapist_data(row: dict[str, str]) -> dict[str, Any]:
    return _filled(
        therapist_id=row.get("id", ""),
        name=row.get("first_name", ""),
        phone=row.get("phone", ""),
        email=row.get("email", ""),
        supervisor_id=row.get("supervisor_id", ""),
    )


def _client_data(row: dict[str, str], issues: list[tuple[str, str]]) -> dict[str, Any]:
    def flag(column: str) -> bool:
        value = row.get(column, "").lower()
        if value not in _TRUE | _FALSE:
            issues.append((column, f"expected yes or no (true/false, 1/0), got '{_shown(value)}'"))
        return value in _TRUE

    data = _filled(
        client_id=row.get("id", ""),
        first_name=row.get("first_name", ""),
        last_name=row.get("last_name", ""),
        phone=row.get("phone", ""),
        email=row.get("email", ""),
        time_zone=row.get("time_zone", ""),
        risk=row.get("risk", "").lower(),
        therapist_id=row.get("therapist_id", ""),
    )
    data["consent"] = {
        "voice": flag("consent_voice"),
        "sms": flag("consent_sms"),
        "email": flag("consent_email"),
    }
    data["detailed_voicemail_ok"] = flag("detailed_voicemail_ok")
    data["payer_allows_no_show_fee"] = flag("payer_allows_no_show_fee")
    contact = _filled(
        name=row.get("ec_name", ""),
        relationship=row.get("ec_relationship", ""),
        phone=row.get("ec_phone", ""),
        email=row.get("ec_email", ""),
    )
    if "name" in contact:
        data["emergency_contact"] = contact | {"consent_to_contact": flag("ec_consent")}
    elif contact:
        issues.append(("ec_name", "required when other emergency contact cells are filled in"))
    return data


def _shown(text: str) -> str:
    """A name from the file in an error line: control characters escaped, and cut if long."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text if len(text) <= 64 else text[:64] + "..."


def _filled(**values: str) -> dict[str, Any]:
    """Drop empty cells, so the model's default (None, "", standard risk) applies."""
    return {name: value for name, value in values.items() if value}


def _column(kind: RecordType, loc: tuple[int | str, ...]) -> str:
    path = tuple(str(part) for part in loc)
    if not path:
        return "row"
    columns = _COLUMN_OF[kind]
    return columns.get(path[:2]) or columns.get(path[:1]) or path[-1]


def _message(msg: str) -> str:
    """Pydantic's message without its error-class prefix ("Value error, ...")."""
    msg = msg.removeprefix("Value error, ")
    return "required" if msg == "Field required" else msg
