"""Load therapists and clients from one CSV file, all or nothing.

Columns (header row required; empty cells mean "none";
booleans: yes/no, true/false, 1/0, empty = no):

    record_type        therapist | client
    id                 the therapist's or client's id (opaque, e.g. T100 / C100)
    first_name         client first name, or the therapist's display name ("Dr. Maya Lin")
    last_name          client last name (therapists: leave empty)
    phone              E.164, e.g. +15555550101
    email
    time_zone          client's IANA zone, e.g. America/New_York (therapists: leave empty)
    consent_voice, consent_sms, consent_email      client's consent per channel
    detailed_voicemail_ok                          client allows detail in messages
    risk               standard | elevated | high
    payer_allows_no_show_fee                       no for Medicaid and other plans that forbid fees
    therapist_id       the client's therapist
    supervisor_id      the therapist's supervisor (another therapist row)
    ec_name, ec_relationship, ec_phone, ec_email, ec_consent   the client's emergency contact

Every bad row is reported with its line number; nothing of a bad file is applied.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from models.directory import ClientProfile, Therapist
from store.case_store import CaseStore

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
_TRUE, _FALSE = {"yes", "y", "true", "1"}, {"no", "n", "false", "0", ""}


class DirectoryImportError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class ImportSummary(BaseModel):
    therapists: int
    clients: int


def _flag(row: dict[str, str], column: str, default: bool = False) -> bool:
    value = row.get(column, "").strip().lower()
    if value == "" and default:
        return True
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{column}: expected yes or no, got {value!r}")


def _client(row: dict[str, str]) -> ClientProfile:
    data: dict[str, Any] = {
        "client_id": row["id"],
        "first_name": row["first_name"],
        "last_name": row.get("last_name", ""),
        "phone": row["phone"] or None,
        "email": row["email"] or None,
        "time_zone": row["time_zone"],
        "consent": {
            "voice": _flag(row, "consent_voice"),
            "sms": _flag(row, "consent_sms"),
            "email": _flag(row, "consent_email"),
        },
        "detailed_voicemail_ok": _flag(row, "detailed_voicemail_ok"),
        "risk": row["risk"] or "standard",
        "payer_allows_no_show_fee": _flag(row, "payer_allows_no_show_fee", default=True),
        "therapist_id": row["therapist_id"] or None,
    }
    if row["ec_name"]:
        data["emergency_contact"] = {
            "name": row["ec_name"],
            "relationship": row["ec_relationship"],
            "phone": row["ec_phone"] or None,
            "email": row["ec_email"] or None,
            "consent_to_contact": _flag(row, "ec_consent"),
        }
    return ClientProfile.model_validate(data)


def _therapist(row: dict[str, str]) -> Therapist:
    return Therapist.model_validate(
        {
            "therapist_id": row["id"],
            "name": row["first_name"],
            "email": row["email"],
            "phone": row["phone"] or None,
            "supervisor_id": row["supervisor_id"] or None,
        }
    )


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc)


def parse_directory_csv(
    path: str | Path,
) -> tuple[list[Therapist], list[ClientProfile], dict[str, int]]:
    """Parse and validate every row; return the records and each id's line number."""
    errors: list[str] = []
    therapists: list[Therapist] = []
    clients: list[ClientProfile] = []
    lines: dict[str, int] = {}
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DirectoryImportError([f"line 1: missing columns: {', '.join(missing)}"])
        for row in reader:
            line = reader.line_num
            cells = {k: (v or "").strip() for k, v in row.items() if k}
            kind = cells["record_type"].lower()
            record_id = cells["id"]
            if record_id in lines:
                errors.append(f"line {line}: id {record_id!r} also on line {lines[record_id]}")
                continue
            try:
                if kind == "therapist":
                    therapists.append(_therapist(cells))
                elif kind == "client":
                    clients.append(_client(cells))
                else:
                    raise ValueError(f"record_type: expected therapist or client, got {kind!r}")
                lines[record_id] = line
            except (ValidationError, ValueError) as exc:
                errors.append(f"line {line}: {_describe(exc)}")
    if errors:
        raise DirectoryImportError(errors)
    return therapists, clients, lines


async def import_directory_csv(store: CaseStore, path: str | Path) -> ImportSummary:
    therapists, clients, lines = parse_directory_csv(path)
    known = {t.therapist_id for t in therapists} | await store.therapist_ids()
    errors = [
        f"line {lines[t.therapist_id]}: supervisor_id: unknown therapist {t.supervisor_id!r}"
        for t in therapists
        if t.supervisor_id and t.supervisor_id not in known
    ] + [
        f"line {lines[c.client_id]}: therapist_id: unknown therapist {c.therapist_id!r}"
        for c in clients
        if c.therapist_id and c.therapist_id not in known
    ]
    if errors:
        raise DirectoryImportError(sorted(errors, key=lambda e: int(e.split(":")[0][5:])))
    await store.import_directory(therapists, clients)
    return ImportSummary(therapists=len(therapists), clients=len(clients))
