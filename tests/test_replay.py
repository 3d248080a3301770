"""Versioning in practice: every saved history (one per tested path, recorded by
`python -m tests.record_histories`) replays against the current workflow code. A change to the
workflow's commands without `workflow.patched` fails here."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

import models.quiet_hours
from models.case import MissedSessionInput
from models.edge import EdgeError, at_edge
from models.policy import QuietHours
from models.quiet_hours import next_allowed_send_time
from tests.record_histories import HISTORIES, SCENARIOS
from workflows.client_text_notice import ClientTextNoticeWorkflow
from workflows.missed_session import MissedSessionWorkflow

SAVED = sorted(HISTORIES.glob("*.json"))


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


async def _replay(path: Path) -> None:
    replayer = Replayer(
        workflows=[MissedSessionWorkflow, ClientTextNoticeWorkflow],
        data_converter=pydantic_data_converter,
    )
    await replayer.replay_workflow(_history(path))


def test_every_tested_path_has_a_saved_history() -> None:
    assert {p.stem for p in SAVED} >= set(SCENARIOS)


@pytest.mark.parametrize("path", SAVED, ids=[p.stem for p in SAVED])
async def test_saved_history_replays(path: Path) -> None:
    await _replay(path)


def _first_input(path: Path) -> dict[str, object]:
    started = _history(path).events[0].workflow_execution_started_event_attributes
    return json.loads(started.input.payloads[0].data)


async def test_a_history_whose_input_the_edge_now_rejects_still_replays() -> None:
    path = HISTORIES / "lenient_input.json"
    stored = _first_input(path)
    with pytest.raises(EdgeError, match="unknown key retired_key"):
        at_edge(MissedSessionInput, stored)
    policy = dict(stored["policy"])  # type: ignore[call-overload]
    del policy["retired_key"]
    with pytest.raises(EdgeError, match="grace: must be between 15 and 30 minutes"):
        at_edge(MissedSessionInput, {**stored, "policy": policy})
    await _replay(path)


async def test_quiet_hours_decisions_do_not_change_with_a_newer_time_zone_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker that replays a case may have a different tz database (a country changed its
    offset). The decision was recorded by a local activity, so replay does not recompute it."""
    evening = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # 23:00 at UTC-5
    before = next_allowed_send_time(evening, "Etc/GMT+5", QuietHours())
    monkeypatch.setattr(models.quiet_hours, "ZoneInfo", lambda name: ZoneInfo("Asia/Tokyo"))
    assert next_allowed_send_time(evening, "Etc/GMT+5", QuietHours()) != before
    await _replay(HISTORIES / "quiet_hours.json")
    await _replay(HISTORIES / "close_out_in_quiet_hours.json")


def _patches(path: Path) -> list[str]:
    """Patch ids recorded in a history (markers written by `workflow.patched`)."""
    return [
        e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data.decode()
        for e in _history(path).events
        if e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]


@pytest.mark.parametrize("name", ["acknowledgement", "responded"])
async def test_histories_from_before_and_after_a_patched_change_both_replay(name: str) -> None:
    """`answers-recorded-at-once` changed what the workflow does on an acknowledgement or a
    response; cases opened before it (recorded without the patch) must still replay."""
    before, after = HISTORIES / f"{name}.json", HISTORIES / f"{name}_v2.json"
    assert _patches(before) == []
    assert any("answers-recorded-at-once" in p for p in _patches(after))
    await _replay(before)
    await _replay(after)


def _activity_types(path: Path) -> set[str]:
    return {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in _history(path).events
        if e.activity_task_scheduled_event_attributes.activity_type.name
    }


@pytest.mark.parametrize("name", ["full_case", "quiet_hours", "close_out_in_round", "supervisor"])
async def test_cases_opened_before_messages_were_batched_still_replay(name: str) -> None:
    """`messages-together` sends a step's messages in one activity; a case opened before it
    sends one activity per message, and both histories replay on the current code."""
    before, after = HISTORIES / f"{name}_v3.json", HISTORIES / f"{name}_v4.json"
    assert not any("messages-together" in p for p in _patches(before))
    assert _activity_types(before) >= {"send_sms", "send_email"}
    assert any("messages-together" in p for p in _patches(after))
    assert _activity_types(after) & {"send_sms", "send_email", "place_call"} == set()
    assert "send_messages" in _activity_types(after)
    await _replay(before)
    await _replay(after)
