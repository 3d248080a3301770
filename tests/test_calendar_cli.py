"""`starter.py calendar ...` and `sweep --once`: sources kept with their secrets sealed, status
that says how fresh each source is, one-line errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from starter import main
from tests.calendar_data import calendar


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cases.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.setenv("SECRETS_KEY_FILE", str(tmp_path / "keys" / "secrets.key"))
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")  # nothing listens: never contacted
    return path


def _dump(database: Path) -> str:
    with sqlite3.connect(database) as db:
        return "\n".join(str(row) for row in db.execute("SELECT * FROM calendar_sources"))


def test_secrets_are_never_printed_and_a_database_dump_does_not_reveal_them(
    database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DAV_PASSWORD", "correct-horse-battery")
    # Google's secret address carries its token in the path; other exports in the query.
    feed = "https://calendar.example.org/private-path-token-456/basic.ics?token=sekrit-token-123"
    assert main(["calendar", "add", "google", "--ics", feed, "--mode", "marked"]) == 0
    dav = ["--caldav", "https://dav.example.org/cal/therapist/", "--username", "maya"]
    assert main(["calendar", "add", "dav", *dav, "--mode", "presumed", "--password-env",
                 "DAV_PASSWORD"]) == 0  # fmt: skip
    assert main(["calendar", "list"]) == 0
    assert main(["calendar", "status"]) == 0
    out = capsys.readouterr().out

    for secret in ("correct-horse-battery", "sekrit-token-123", "path-token-456"):
        assert secret not in out
        assert secret not in _dump(database)
    assert "https://calendar.example.org/…" in out and "https://dav.example.org/…" in out
    assert "password stored encrypted" in out
    assert "google: never read" in out and "dav: never read" in out


def test_a_password_in_the_url_or_a_bad_source_is_one_line_and_nothing_is_kept(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "https://maya:hunter2@dav.example.org/cal/"
    assert main(["calendar", "add", "dav", "--caldav", url, "--mode", "marked"]) == 2
    assert main(["calendar", "add", "x" * 30, "--ics", "a.ics", "--mode", "marked"]) == 2
    assert main(["calendar", "remove", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no user or password in the URL" in err and "hunter2" not in err
    assert "source_id: at most 24 characters" in err
    assert "no such calendar source: nope" in err
    assert _dump(database) == ""


def test_sweep_once_prints_what_it_did_and_status_then_shows_the_read(
    database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = tmp_path / "empty.ics"
    feed.write_text(calendar())
    assert main(["calendar", "add", "fd", "--ics", str(feed), "--mode", "presumed"]) == 0
    broken = tmp_path / "broken.ics"
    broken.write_text("this is not a calendar\nAlex Kim, 555-0101\n")
    assert main(["calendar", "add", "old", "--ics", str(broken), "--mode", "presumed"]) == 0
    assert main(["sweep", "--once"]) == 0
    assert main(["calendar", "status"]) == 0
    out = capsys.readouterr().out

    assert "fd: 0 sessions; opened 0" in out
    assert "old: not read:" in out and "Alex" not in out
    assert "fd: last read" in out and "ago)" in out
    assert "old: never read" in out and "last error" in out
