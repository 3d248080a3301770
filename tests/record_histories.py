"""Record a history of every path the tests cover into tests/histories/, for the replay test.

    .venv/bin/python -m tests.record_histories                    # every path
    .venv/bin/python -m tests.record_histories arrival            # just some
    .venv/bin/python -m tests.record_histories --suffix=_v2 arrival  # beside an older one

Re-record only for an intentional, versioned change: a history recorded by older code must keep
replaying (that is what `workflow.patched` is for), so never overwrite one to make a test pass;
add the new recording beside it under a new name.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from models.case import MissedSessionInput, Resolution, Stage, case_id_for
from store.case_store import CaseStore
from temporal_env.binaries import find_binary
from temporal_env.process import exit_now
from temporal_env.search_attributes import register_search_attributes
from tests import directory_data
from tests.harness import DEFAULT_POLICY, NO_QUIET_HOURS, REACHED, Harness, harness

HISTORIES = Path(__file__).parent / "histories"
CLOSE_OUT = REACHED.model_dump(mode="json")
Handle = WorkflowHandle[Any, Resolution]
Scenario = Callable[[Harness, WorkflowEnvironment], Awaitable[Handle]]


async def arrival(h: Harness, env: WorkflowEnvironment) -> Handle:
    handle = await h.start()
    await env.sleep(timedelta(minutes=10))
    await h.answer(handle, "client_arrived", note="front desk")
    return handle


async def responded(h: Harness, env: WorkflowEnvironment) -> Handle:
    handle = await h.start()
    await h.advance_to(handle, Stage.contacting_client.value)
    await h.until_sent(3)
    await h.answer(handle, "client_responded", via="sms", note="will call back")
    await h.close_as_therapist(handle)
    return handle


async def client_page_answer(h: Harness, env: WorkflowEnvironment) -> Handle:
    """The client answers on their page ("Please call me"); the close-out gives materials."""
    handle = await h.start()
    await h.advance_to(handle, Stage.contacting_client.value)
    await h.until_sent(3)
    await h.answer(handle, "client_responded", via="web link", intent="call_me")
    await h.close_as_therapist(
        handle, REACHED.model_copy(update={"materials": "Breathing exercise each morning."})
    )
    return handle


async def full_case(h: Harness, env: WorkflowEnvironment) -> Handle:
    """Client unreachable, emergency contact, therapist reminded, a note, then the close-out."""
    handle = await h.start()
    await h.answer(handle, "add_note", author="front desk", text="No call from the client.")
    await h.advance_to(handle, Stage.awaiting_therapist.value)
    await env.sleep(timedelta(hours=9))
    await handle.signal("client_reached", {"outcome": "bogus"})  # recorded as rejected
    await h.answer(handle, "client_reached", **CLOSE_OUT)
    return handle


async def no_consent(h: Harness, env: WorkflowEnvironment) -> Handle:
    handle = await h.start(client_id="C2")
    await h.close_as_therapist(handle)
    return handle


async def invalid_number(h: Harness, env: WorkflowEnvironment) -> Handle:
    h.providers.invalid_numbers.add("+15555550199")
    handle = await h.start(client_id="C4")
    await h.close_as_therapist(handle)
    return handle


async def opted_out(h: Harness, env: WorkflowEnvironment) -> Handle:
    h.providers.opted_out_numbers.add("+15555550101")
    handle = await h.start(client_id="C3")
    await h.close_as_therapist(handle)
    return handle


async def provider_failure(h: Harness, env: WorkflowEnvironment) -> Handle:
    h.providers.transient_failures["sms"] = 1000
    handle = await h.start(client_id="C3")
    await h.close_as_therapist(handle)
    return handle


async def supervisor(h: Harness, env: WorkflowEnvironment) -> Handle:
    handle = await h.start(client_id="C3")
    await h.advance_to(handle, Stage.awaiting_therapist.value)
    await env.sleep(timedelta(hours=50))  # reminders, escalation, told again
    await h.answer(handle, "client_reached", **CLOSE_OUT)
    return handle


async def acknowledgement(h: Harness, env: WorkflowEnvironment) -> Handle:
    handle = await h.start(client_id="C3")
    await h.advance_to(handle, Stage.awaiting_therapist.value)
    await env.sleep(timedelta(hours=2))
    await h.answer(handle, "acknowledged", by="T1", note="calling tonight")
    await env.sleep(timedelta(hours=13))
    await h.answer(handle, "client_reached", **CLOSE_OUT)
    return handle


async def quiet_hours(h: Harness, env: WorkflowEnvironment) -> Handle:
    zone = await _late_evening_zone(env)
    await h.store.import_directory([], [directory_data.client("C9", time_zone=zone)])
    handle = await h.start(client_id="C9", policy=DEFAULT_POLICY)
    await h.until_sent(3)  # email at once; call and text at 08:00 there
    await h.answer(handle, "client_responded", via="phone")
    await h.close_as_therapist(handle)
    return handle


async def close_out_in_grace(h: Harness, env: WorkflowEnvironment) -> Handle:
    handle = await h.start()
    await env.sleep(timedelta(minutes=5))
    await h.answer(handle, "client_reached", **CLOSE_OUT)
    return handle


async def close_out_in_round(h: Harness, env: WorkflowEnvironment) -> Handle:
    handle = await h.start()
    await h.advance_to(handle, Stage.contacting_client.value)
    await h.until_sent(3)
    await h.answer(handle, "client_reached", **CLOSE_OUT)
    return handle


async def close_out_in_quiet_hours(h: Harness, env: WorkflowEnvironment) -> Handle:
    zone = await _late_evening_zone(env)
    await h.store.import_directory([], [directory_data.client("C9", time_zone=zone)])
    handle = await h.start(client_id="C9", policy=DEFAULT_POLICY)
    await h.until_sent(1)  # the email; call and text deferred
    await h.answer(handle, "client_reached", **CLOSE_OUT)
    return handle


async def close_out_at_emergency_contact(h: Harness, env: WorkflowEnvironment) -> Handle:
    handle = await h.start(client_id="C5")
    await h.advance_to(handle, Stage.contacting_emergency_contact.value)
    await h.answer(handle, "client_reached", **CLOSE_OUT)
    return handle


async def cancelled_by_operator(h: Harness, env: WorkflowEnvironment) -> Handle:
    handle = await h.start()
    await h.advance_to(handle, Stage.contacting_client.value)
    await h.until_sent(3)
    await handle.cancel()
    return handle


async def continued_as_new(h: Harness, env: WorkflowEnvironment) -> Handle:
    policy = NO_QUIET_HOURS.model_copy(
        update={
            "demo": True,
            "therapist_channels": NO_QUIET_HOURS.therapist_channels[:1],
            "supervisor_renotify_every": timedelta(minutes=10),
        }
    )
    handle = await h.start(client_id="C3", policy=policy)
    await h.advance_to(handle, Stage.awaiting_therapist.value)
    await env.sleep(timedelta(days=2))
    await h.answer(handle, "client_reached", **CLOSE_OUT)
    return handle


async def session_cancelled_in_grace(h: Harness, env: WorkflowEnvironment) -> Handle:
    handle = await h.start()
    await env.sleep(timedelta(minutes=5))
    await h.answer(handle, "session_cancelled", by="calendar")
    await h.close_as_therapist(handle)
    return handle


async def session_moved_in_round(h: Harness, env: WorkflowEnvironment) -> Handle:
    handle = await h.start()
    await h.advance_to(handle, Stage.contacting_client.value)
    await h.until_sent(3)
    moved_to = (await env.get_current_time()) + timedelta(days=7)
    await h.answer(handle, "session_cancelled", moved_to=moved_to.isoformat(), by="calendar")
    await h.close_as_therapist(handle)
    return handle


async def lenient_input(h: Harness, env: WorkflowEnvironment) -> Handle:
    """An input the current edge rules reject (a 45-minute grace on a production policy, a key
    no version knows): history must replay it all the same."""
    policy = {**DEFAULT_POLICY.model_dump(mode="json"), "grace": "PT45M", "retired_key": 1}
    case = {
        "appointment_id": "lenient-1",
        "client_id": "C3",
        "therapist_id": "T1",
        "scheduled_start": (await env.get_current_time()).isoformat(),
        "policy": {**policy, "quiet_hours": {"enabled": False}},
    }
    assert MissedSessionInput.model_validate(case).policy.grace == timedelta(minutes=45)
    handle: Handle = await h.client.start_workflow(
        "MissedSessionWorkflow",
        case,
        id=case_id_for("lenient-1"),
        task_queue=h.task_queue,
        result_type=Resolution,
    )
    h.started.append(handle.id)
    await h.close_as_therapist(handle)
    return handle


async def _late_evening_zone(env: WorkflowEnvironment) -> str:
    """A zone where the grace wait ends at 23:xx local time."""
    now = await env.get_current_time()
    offset = (23 - (now + timedelta(minutes=20)).hour) % 24
    return f"Etc/GMT{-(offset - 24 if offset > 12 else offset):+d}"


SCENARIOS: dict[str, Scenario] = {
    scenario.__name__: scenario
    for scenario in (
        arrival,
        responded,
        client_page_answer,
        full_case,
        no_consent,
        invalid_number,
        opted_out,
        provider_failure,
        supervisor,
        acknowledgement,
        quiet_hours,
        close_out_in_grace,
        close_out_in_round,
        close_out_in_quiet_hours,
        close_out_at_emergency_contact,
        cancelled_by_operator,
        continued_as_new,
        lenient_input,
        session_cancelled_in_grace,
        session_moved_in_round,
    )
}


async def record(names: list[str], suffix: str = "") -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client)
    HISTORIES.mkdir(exist_ok=True)
    try:
        for name in names:
            with tempfile.TemporaryDirectory() as tmp:
                store = CaseStore.from_url(f"sqlite+aiosqlite:///{tmp}/cases.db")
                await store.create_schema()
                async with harness(env, store) as h:
                    handle = await SCENARIOS[name](h, env)
                    try:
                        await handle.result()
                    except Exception:  # a cancelled case ends as cancelled
                        pass
                    history = await h.client.get_workflow_handle(handle.id).fetch_history()
                await store.close()
            out = HISTORIES / f"{name}{suffix}.json"
            out.write_text(json.dumps(json.loads(history.to_json()), indent=None) + "\n")
            print(f"wrote {out.name} ({len(history.events)} events)")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    suffix = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--suffix=")), "")
    names = [a for a in sys.argv[1:] if not a.startswith("--")]
    asyncio.run(record(names or list(SCENARIOS), suffix))
    exit_now(0)  # temporalio/sdk-python#300: no interpreter finalization after the client
