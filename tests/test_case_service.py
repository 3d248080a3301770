"""The case service at the edge: what it refuses before anything is started (on SQLite and on
PostgreSQL alike), the therapist it chooses, and late documentation on closed cases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from models.answers import CaseOutcome
from models.case import MissedSessionInput, Resolution, case_id_for
from models.edge import at_edge
from service.cases import ANSWERS, CaseError, CaseService
from settings import Settings
from store.case_store import CaseStore
from tests import directory_data
from tests.harness import DEFAULT_POLICY, NO_QUIET_HOURS, REACHED, harness
from tests.readme_examples import update_examples
from workflows.missed_session import MissedSessionWorkflow

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"client_id": "C404"}, "unknown client id 'C404': import the directory first"),
        ({"therapist_id": "S1"}, "therapist S1 is not the therapist of client C1"),
        ({"scheduled_start": NOW + timedelta(days=8)}, "more than 7 days from now"),
        ({"scheduled_start": NOW - timedelta(days=30)}, "more than 7 days from now"),
        (
            {"scheduled_start": datetime(9999, 12, 31, 23, 0, tzinfo=UTC)},
            "scheduled_start: must be a date between the years 2000 and 2200",
        ),
        (
            {"scheduled_start": datetime(1, 1, 1, 0, 0, tzinfo=UTC)},
            "scheduled_start: must be a date between the years 2000 and 2200",
        ),
        ({"appointment_id": "A" * 65}, "appointment_id: must be 1 to 64 characters"),
        ({"appointment_id": "A 1/../x"}, "appointment_id: must be 1 to 64 characters"),
        (
            {"policy": DEFAULT_POLICY.model_copy(update={"attendance_window_days": 99_999_999})},
            "attendance_window_days: between 1 and 3650",
        ),
        (
            {"policy": DEFAULT_POLICY.model_copy(update={"name": "x" * 300})},
            "name: 1 to 100 characters",
        ),
        (
            {"policy": DEFAULT_POLICY.model_copy(update={"grace": timedelta(days=10**6)})},
            "grace: more than zero and at most 30 days",
        ),
    ],
)
async def test_a_case_that_cannot_be_opened_is_refused_in_one_line(
    case_store: CaseStore, changes: dict[str, Any], message: str
) -> None:
    await case_store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    service = CaseService(case_store, Settings())  # no Temporal: refused before connecting
    request: dict[str, Any] = {
        "appointment_id": "A1",
        "client_id": "C1",
        "scheduled_start": NOW,
        "policy": DEFAULT_POLICY,
        "now": NOW,
    }
    with pytest.raises(CaseError) as refused:
        await service.open(**(request | changes))
    assert message in str(refused.value)
    assert "\n" not in str(refused.value) and "https://" not in str(refused.value)
    assert await case_store.list_cases(open_only=False) == []


async def test_the_therapist_defaults_to_the_clients_own_and_notes_after_closing_are_addenda(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()  # no therapist given
        await h.answer(handle, "client_reached", **REACHED.model_dump(mode="json"))
        resolution = await handle.result()
        late = await h.service.note(handle.id, {"author": "T1", "text": "Called again, all ok."})

    assert resolution.therapist_id == "T1"
    assert "note added as a dated addendum" in late
    stored = await sqlite_store.get_resolution(handle.id)
    assert stored is not None and [a.text for a in stored.addenda] == ["Called again, all ok."]


async def test_input_that_slipped_past_the_edge_fails_visibly_instead_of_wedging(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    """Started by hand (e.g. `temporal workflow start`) with a start in year 9999: the case
    fails with a clear reason; it does not retry a broken workflow task forever."""
    async with harness(time_skipping_env, sqlite_store) as h:
        case = MissedSessionInput.model_construct(
            appointment_id="Y9999",
            client_id="C1",
            therapist_id="T1",
            scheduled_start=datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
            policy=NO_QUIET_HOURS,
            carried=None,
        )
        handle = await h.client.start_workflow(
            MissedSessionWorkflow.run,
            case,
            id=case_id_for("Y9999"),
            task_queue=h.task_queue,
            result_type=Resolution,
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()

    assert "scheduled_start is out of range" in str(failed.value.cause)
    assert h.providers.sent == []


async def test_answers_to_a_closed_case_say_who_closed_it_and_when(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start()
        await h.answer(handle, "client_arrived", note="front desk")
        resolution = await handle.result()
        with pytest.raises(CaseError) as refused:
            await h.answer(handle, "client_responded", via="sms")

    assert resolution.outcome is CaseOutcome.attended_late
    assert str(refused.value).startswith(
        f"case {handle.id}: case is already closed: attended_late by client_arrived at "
    )
    assert "(America/New_York)" in str(refused.value)  # the practice's zone, named


def test_the_readmes_update_examples_are_accepted_by_the_edge() -> None:
    examples = update_examples()
    assert set(examples) == set(ANSWERS)  # one example for every Update
    for name, data in examples.items():
        at_edge(ANSWERS[name], data)


async def test_search_attributes_are_asked_for_until_found_then_trusted(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: CaseStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The listing is an operator call (on the dev server each one also kept a connection
    open: 10,000 cases opened ran it out of file descriptors). Missing, a case is refused and
    the next one asks again; found once, they are not asked for again."""
    answers = [["OutreachStage"], []]
    asked: list[list[str]] = []

    async def listed(_client: Any) -> list[str]:
        asked.append(answers[min(len(asked), len(answers) - 1)])
        return asked[-1]

    monkeypatch.setattr("service.cases.missing_search_attributes", listed)
    async with harness(time_skipping_env, sqlite_store) as h:
        service = h.service  # a new service: it has not found them yet
        with pytest.raises(CaseError, match="OutreachStage are not registered"):
            await service.open(
                appointment_id="S0", client_id="C1", scheduled_start=NOW,
                policy=DEFAULT_POLICY, now=NOW,
            )  # fmt: skip
        now = await time_skipping_env.get_current_time()
        for n in range(1, 5):
            opened = await service.open(
                appointment_id=f"S{n}{uuid.uuid4().hex[:8]}", client_id="C1",
                scheduled_start=now, policy=DEFAULT_POLICY, now=now,
            )  # fmt: skip
            h.started.append(opened.case_id)
    assert asked == [["OutreachStage"], []]  # two listings for five opens
    assert len(set(h.started)) == 4
