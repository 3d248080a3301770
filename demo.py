"""`starter.py demo`: a whole missed-session case, start to documented resolution, locally.

Starts the embedded dev server (unless TEMPORAL_ADDRESS is set), runs a worker in-process, loads
the sample directory, and opens two cases on the demo policy (seconds instead of hours):

1. Alex (standard risk, consenting emergency contact) does not show and does not answer: calls,
   texts and emails in two rounds, the emergency contact, the therapist; the demo then answers as
   the therapist and prints the documented resolution.
2. Robin (high risk, no consent to contact the emergency contact) is left open awaiting the
   therapist, to look at in the Web UI and close with `starter.py reached`.

No credentials needed: without them every channel is a dry run, marked as such everywhere.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client, WorkflowHandle

from models.case import CaseStatus, Resolution, Stage
from models.policy import load_policy
from models.report import attempt_line, render_resolution
from providers.factory import build_providers, describe_providers
from service.cases import CaseService
from settings import Settings
from starter import open_store
from store.directory_csv import import_directory_csv
from temporal_env.connect import connect
from temporal_env.dev_server import start_dev_server
from temporal_env.search_attributes import register_search_attributes
from worker import build_worker
from workflows.missed_session import MissedSessionWorkflow

ROOT = Path(__file__).parent


async def _follow(
    handle: WorkflowHandle[MissedSessionWorkflow, Resolution], until: Stage, label: str
) -> CaseStatus:
    """Print each stage change and attempt as it happens, until the case reaches `until`."""
    seen_attempts, stage = 0, None
    while True:
        status = await handle.query(MissedSessionWorkflow.case_status)
        if status.stage != stage:
            stage = status.stage
            print(f"[{label}] stage -> {stage.value}")
        for attempt in status.attempts[seen_attempts:]:
            print(f"[{label}] {attempt_line(attempt).strip()}")
        seen_attempts = len(status.attempts)
        if status.stage is until:
            return status
        await asyncio.sleep(0.5)


async def run_demo(settings: Settings, keep_running: bool) -> None:
    env = None
    if os.environ.get("TEMPORAL_ADDRESS"):
        client: Client = await connect()
        await register_search_attributes(client)  # an existing server may not have them yet
    else:
        print("starting the Temporal dev server (Web UI on http://localhost:8233) ...")
        env = await start_dev_server(ROOT / "data")
        client = env.client
    store = await open_store(settings)
    service = CaseService(store, settings, client)
    providers = build_providers(settings)
    print(f"channels: {describe_providers(providers)}")
    summary = await import_directory_csv(store, ROOT / "samples" / "directory.csv")
    print(f"sample directory: {summary.therapists} therapists, {summary.clients} clients")
    policy = load_policy(ROOT / "policies" / "demo.toml")
    run_id = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    try:
        async with build_worker(client, settings, store, providers):
            cases = []
            for client_id in ("C100", "C200"):
                opened = await service.open(
                    appointment_id=f"demo-{run_id}-{client_id}",
                    client_id=client_id,
                    scheduled_start=now,
                    policy=policy,
                )
                cases.append(client.get_workflow_handle(opened.case_id, result_type=Resolution))
                print(f"opened {opened.case_id} (client {client_id}, policy {policy.name})")
            first, second = cases
            await _follow(first, Stage.awaiting_therapist, "case 1")
            print("[case 1] the therapist reports back: client reached and safe")
            answer = await service.close_out(
                first.id,
                {
                    "outcome": "reached_safe",
                    "note": "Reached by phone after the emergency contact passed on the message; "
                    "client is safe, had a family matter.",
                    "follow_up_plan": "Keep next week's session; reminder text the day before.",
                    "fee": {"decision": "waive", "reason": "family emergency"},
                    "by": "T100",
                },
            )
            print(f"[case 1] {answer}")
            resolution = await first.result()
            print()
            print(render_resolution(resolution))
            print()
            await _follow(second, Stage.awaiting_therapist, "case 2")
            print(f"\nWeb UI, case 1 (closed): {service.ui_link(client.namespace, first.id)}")
            print(f"Web UI, case 2 (open):   {service.ui_link(client.namespace, second.id)}")
            if keep_running:
                print(
                    "\nServer and worker keep running (Ctrl-C stops them). Close case 2 with:\n"
                    f"  .venv/bin/python starter.py reached {second.id} --outcome reached_safe "
                    '--note "..." --plan "..." --fee waive --fee-reason "..."'
                )
                await asyncio.Event().wait()
    finally:
        await store.close()
        if env is not None:
            await env.shutdown()
