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
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("missed-session-OLD1") and "awaiting_therapist" in lines[0]
    assert "open 3h" in lines[0] and lines[1].startswith("missed-session-NEW1")


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
            "outcome: Input should be",
        ),
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
    assert message in capsys.readouterr().err
