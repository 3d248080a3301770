"""`starter.py integration add|list|remove`: the token is printed once and only its hash is
kept; errors are one line."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest

from starter import main


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cases.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")  # nothing listens: never contacted
    return path


def test_the_token_is_printed_once_and_stored_only_as_its_hash(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["integration", "add", "ehr"]) == 0
    added = capsys.readouterr().out
    [token] = re.findall(r"mso_[A-Za-z0-9_-]{43}", added)
    assert main(["integration", "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("ehr ") and token not in listed

    with sqlite3.connect(database) as db:
        rows = list(db.execute("SELECT * FROM integrations"))
    assert token not in str(rows)
    assert rows[0][1] == hashlib.sha256(token.encode()).hexdigest()

    assert main(["integration", "add", "ehr"]) == 2  # never a second token silently
    assert main(["integration", "add", "bad id"]) == 2
    assert main(["integration", "remove", "ehr"]) == 0
    assert main(["integration", "remove", "ehr"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: integration ehr exists: remove it first to issue a new token",
        "error: integration_id: must be 1 to 64 characters: ASCII letters, digits, _ . : -",
        "error: no such integration: ehr",
    ]
