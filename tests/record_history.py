"""Record the history of a full case (escalation, reminders, malformed signal, close) for the
replay test: `.venv/bin/python -m tests.record_history`."""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from models.case import Stage
from store.case_store import CaseStore
from temporal_env.binaries import find_binary
from temporal_env.search_attributes import register_search_attributes
from tests.harness import REACHED, harness
from workflows.missed_session import MissedSessionWorkflow

OUT = Path(__file__).parent / "histories" / "full_case.json"


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client)
    with tempfile.TemporaryDirectory() as tmp:
        store = CaseStore.from_url(f"sqlite+aiosqlite:///{tmp}/cases.db")
        await store.create_schema()
        async with harness(env, store) as h:
            handle = await h.start()
            await handle.signal(MissedSessionWorkflow.add_note, {"author": "desk", "text": "n"})
            await h.advance_to(handle, Stage.awaiting_therapist.value)
            await env.sleep(timedelta(hours=9))
            await handle.signal("client_reached", {"outcome": "bogus"})
            await handle.signal(MissedSessionWorkflow.client_reached, REACHED)
            await handle.result()
            history = await handle.fetch_history()
        await store.close()
    await env.shutdown()
    OUT.write_text(json.dumps(json.loads(history.to_json()), indent=1))
    print(f"wrote {OUT} ({len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(main())
