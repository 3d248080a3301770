"""The command line's own behaviour: clear errors before anything is sent, list and stuck."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.case import Stage
from models.outreach import OpenCaseRequest, StageChange
from starter import main
from store.case_store import CaseStore


def _seed(url: str) -> None:
    async def seed() -> None:
        store = CaseStore.from_url(url)
        await store.create_schema()
        now = datetime.now(UTC)
        for appointment, age in (("OLD1", timedelta(hours=3)), ("NEW1", timedelta(minutes=10))):
            case_id = f"missed-session-{appointment}"
            await store.open_case(
                OpenCaseRequest(
                    case_id=case_id,
                    appointment_id=appointment,
                    client_id="C1",
                    therapist_id="T1",
                    scheduled_start=now - age,
                    policy_name="standard",
                    opened_at=now - age,
                )
            )
            await store.set_stage(
                StageChange(case_id=case_id, stage=Stage.awaiting_therapist, at=now - age)
            )
        await store.close()

    asyncio.run(seed())


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/cases.db"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TEMPORAL_UI_URL", "http://ui.example:8233")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")  # nothing listens: never contacted
    _seed(url)
    return url


def test_stuck_lists_only_cases_past_the_threshold_with_their_web_ui_link(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stuck", "--older-than", "2h"]) == 0
    out = capsys.readouterr().out
    assert "missed-session-OLD1  awaiting_therapist for 3h" in out
    assert "http://ui.example:8233/namespaces/default/workflows/missed-session-OLD1" in out
    assert "NEW1" not in out


def test_list_shows_open_cases_with_stage_and_age(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list"]) == 0
    warning, *lines = capsys.readouterr().out.splitlines()
    assert warning == "(Temporal not reachable: listed from the case store alone, not reconciled)"
    assert lines[0].startswith("missed-session-OLD1") and "awaiting_therapist" in lines[0]
    assert "open 3h" in lines[0] and lines[1].startswith("missed-session-NEW1")


def test_list_all_shows_closed_cases_as_closed_with_their_outcome(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def close_one() -> None:
        store = CaseStore.from_url(database)
        await store.mark_ended_outside("missed-session-OLD1", "TERMINATED", datetime.now(UTC))
        await store.close()

    asyncio.run(close_one())
    assert main(["list"]) == 0
    assert "OLD1" not in capsys.readouterr().out
    assert main(["list", "--all"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert lines[0].startswith("missed-session-OLD1") and "closed: terminated" in lines[0]
    assert "open" in lines[1] and lines[1].startswith("missed-session-NEW1")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stuck", "--older-than", "soon"], "not a duration"),
        (
            "trigger --appointment A1 --client C1 --therapist T1 --start 2026-11-23T15:00".split(),
            "needs a time zone offset",
        ),
        (
            ["reached", "A1", "--outcome", "fine", "--note", "n", "--plan", "p", "--fee", "charge"],
            "outcome must be one of reached_safe, rescheduled",
        ),
        (
            "trigger --appointment A1 --client C404 --start 2026-11-23T15:00-05:00".split(),
            "unknown client id 'C404'",
        ),
        (
            "trigger --appointment A1 --client C1 --start 2026-11-23T15:00-05:00 "
            "--policy nowhere.toml".split(),
            "cannot read policy file nowhere.toml",
        ),
        (["note", "A1", "--author", "desk", "--text", "a\x00b"], "control characters"),
        (["show", "A1"], "no Temporal server reachable at 127.0.0.1:9"),
        (["arrived", "A1"], "no Temporal server reachable at 127.0.0.1:9"),
        (
            "reached A1 --outcome rescheduled --note n --plan p --fee waive".split(),
            "a fee waiver needs a reason",
        ),
        (["note", "A1", "--author", "desk", "--text", "  "], "text:"),
    ],
)
def test_bad_input_is_a_clear_error_and_nothing_is_sent(
    database: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    # Validation fails before any connection (TEMPORAL_ADDRESS points nowhere).
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1  # one line
    assert "Traceback" not in err and "https://" not in err
