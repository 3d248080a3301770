"""The practice calendar end to end: a real CalDAV server (Radicale, with a password), the real
Temporal dev server running the sweep on its Schedule, the real case workflow. Events put into
the calendar with the caldav client open a case, move it and see it closed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from temporalio.client import ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment

from models.calendar import appointment_id_for
from models.case import Resolution, case_id_for
from service.calendar_sweep import CalendarService
from service.cases import CaseService
from settings import Settings
from store.case_store import CaseStore
from temporal_env.dev_server import start_dev_server
from temporal_env.schedule import SCHEDULE_ID, ensure_sweep_schedule
from tests import directory_data
from tests.calendar_data import calendar, vevent
from tests.fakes import RecordingProviders
from tests.harness import REACHED
from tests.radicale_server import (  # noqa: F401  (the fixture, found by pytest by name)
    RadicaleServer,
    make_calendar,
    put_event,
    radicale_with_auth_fixture,
)
from worker import build_worker

T = TypeVar("T")
ROOT = Path(__file__).parent.parent


@pytest.fixture
async def dev_server(tmp_path: Path) -> AsyncIterator[WorkflowEnvironment]:
    # Free ports: a dev server someone else runs on 7233 (the demo) must not answer this test.
    env = await start_dev_server(tmp_path / "temporal", port=None, ui_port=None)
    yield env
    await env.shutdown()


async def _eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    for _ in range(150):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


async def test_a_caldav_calendar_opens_moves_and_sees_a_case_closed_on_the_schedule(
    dev_server: WorkflowEnvironment, radicale_with_auth: RadicaleServer, tmp_path: Path
) -> None:
    store = CaseStore.from_url(f"sqlite+aiosqlite:///{tmp_path}/cases.db")
    await store.create_schema()
    await store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    settings = Settings(
        temporal_task_queue=f"calendar-{uuid.uuid4().hex[:8]}",
        secrets_key_file=str(tmp_path / "secrets.key"),
        calendar_policy_file=str(ROOT / "policies" / "demo.toml"),
        call_poll_interval_seconds=0.01,
    )
    client = dev_server.client
    cases = CaseService(store, settings, client)
    calendars = CalendarService(store, settings, cases)
    url = await make_calendar(radicale_with_auth)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=1)
    uid = f"{uuid.uuid4().hex}@ehr.example"
    await put_event(radicale_with_auth, url, calendar(vevent(uid, start, categories=["NO-SHOW"])))
    source = {
        "source_id": "dav",
        "kind": "caldav",
        "location": url,
        "username": radicale_with_auth.username,
        "mode": "marked",
    }
    await calendars.add(source, radicale_with_auth.password, now)
    case_id = case_id_for(appointment_id_for("dav", uid, None))
    schedule = client.get_schedule_handle(SCHEDULE_ID)
    providers = RecordingProviders()
    try:
        async with build_worker(client, settings, store, providers.bundle()):
            created = await ensure_sweep_schedule(
                client, settings.temporal_task_queue, timedelta(minutes=10)
            )
            updated = await ensure_sweep_schedule(
                client, settings.temporal_task_queue, timedelta(seconds=30)
            )
            description = await schedule.describe()
            await schedule.trigger()
            opened = await _eventually(lambda: store.get_case(case_id), "the case opened")

            moved_to = start + timedelta(days=1)
            await put_event(radicale_with_auth, url, calendar(vevent(uid, moved_to)))
            await schedule.trigger()
            handle = client.get_workflow_handle(case_id, result_type=Resolution)

            async def moved() -> datetime | None:
                status = await cases.status(case_id)
                return getattr(status, "session_moved_to", None)

            moved_seen = await _eventually(moved, "the case heard the session moved")
            await cases.close_out(case_id, {**REACHED.model_dump(mode="json"), "by": "T1"})
            resolution = await handle.result()
            stored = await store.get_case(case_id)
            runs = [w async for w in client.list_workflows("WorkflowType='CalendarSweepWorkflow'")]
            histories = [
                (await client.get_workflow_handle(w.id, run_id=w.run_id).fetch_history()).to_json()
                for w in runs
            ]
            await schedule.pause(note="calendar migration tonight")
            await ensure_sweep_schedule(client, settings.temporal_task_queue, timedelta(minutes=2))
            after_pause = (await schedule.describe()).schedule
    finally:
        await schedule.delete()
        await store.close()

    assert (created, updated) == ("created", "updated")
    assert description.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
    assert description.schedule.spec.intervals[0].every == timedelta(seconds=30)
    # Updating a schedule that staff paused keeps it paused, with their note.
    assert after_pause.state.paused and after_pause.state.note == "calendar migration tonight"
    assert after_pause.spec.intervals[0].every == timedelta(minutes=2)
    assert opened.scheduled_start == start and opened.client_id == "C1"
    assert moved_seen == moved_to
    assert resolution.outcome.value == "reached_safe"
    assert any("session was moved to" in n.text for n in resolution.notes)
    assert stored is not None and stored.outcome == "reached_safe"
    assert runs and all(radicale_with_auth.password not in h for h in histories)
    assert all("Session with" not in h and uid not in h for h in histories)
