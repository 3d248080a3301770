"""Fault drill: the Temporal dev server stopped while cases wait on their timers, and started
again on its state file. The timers fire late, the cases carry on, and the worker (which kept
running, its client reconnecting) finishes them."""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client

from models.case import Resolution, Stage
from models.policy import load_policy
from providers.factory import build_providers
from service.cases import CaseService
from settings import Settings
from store.case_store import CaseStore
from store.directory_csv import import_directory_csv
from temporal_env.codec import data_converter
from temporal_env.dev_server import start_dev_server
from tests.harness import REACHED
from worker import build_worker
from workflows.missed_session import MissedSessionWorkflow

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.drill(seconds=25)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_cases_waiting_on_timers_survive_a_server_restart(tmp_path: Path) -> None:
    port = _free_port()
    server = await start_dev_server(data_dir=tmp_path / "temporal", port=port, ui_port=None)
    client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter(None))
    store = CaseStore.from_url(f"sqlite+aiosqlite:///{tmp_path}/cases.db")
    await store.create_schema()
    await import_directory_csv(store, ROOT / "samples" / "directory.csv")
    settings = Settings(temporal_task_queue=f"restart-{uuid.uuid4().hex[:8]}")
    service = CaseService(store, settings, client)
    policy = load_policy(ROOT / "policies" / "demo.toml")  # a 3-second grace wait
    providers = build_providers(settings)  # dry runs
    loop = asyncio.get_running_loop()
    try:
        async with build_worker(client, settings, store, providers):
            now = datetime.now(UTC)
            opened = [
                await service.open(
                    appointment_id=f"R{n}{uuid.uuid4().hex[:8]}",
                    client_id="C100",
                    scheduled_start=now,
                    policy=policy,
                    now=now,
                )
                for n in range(3)
            ]
            await _until_stage(client, opened[0].case_id, Stage.grace_wait)
            await server.shutdown()  # while every case waits out its grace timer
            stopped_at = loop.time()
            await asyncio.sleep(6)  # the timers fall due while nobody is there
            server = await start_dev_server(data_dir=tmp_path / "temporal", port=port, ui_port=None)
            for case in opened:
                await _until_stage(client, case.case_id, Stage.awaiting_therapist, seconds=90)
            carried_on_after = loop.time() - stopped_at
            close_out = {**REACHED.model_dump(mode="json"), "by": "T100"}
            for case in opened:
                await asyncio.wait_for(service.close_out(case.case_id, close_out), timeout=30)
            resolutions = [
                await asyncio.wait_for(
                    client.get_workflow_handle(c.case_id, result_type=Resolution).result(), 30
                )
                for c in opened
            ]
    finally:
        await providers.aclose()
        await store.close()
        await server.shutdown()

    assert carried_on_after >= 6  # late, as the server was down, but they carried on
    for resolution in resolutions:
        assert resolution.outcome.value == "reached_safe"
        steps = [a.step for a in resolution.attempts]
        assert steps and len(steps) == len(set(steps))  # outreach happened, nothing twice
        assert any(a.recipient_role.value == "emergency_contact" for a in resolution.attempts)


async def _until_stage(client: Client, case_id: str, stage: Stage, seconds: float = 30) -> None:
    handle = client.get_workflow_handle(case_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        try:
            status = await handle.query(MissedSessionWorkflow.case_status)
            if status.stage is stage:
                return
        except Exception:  # the server is still coming back
            pass
        if loop.time() > deadline:
            raise AssertionError(f"{case_id} never reached {stage.value}")
        await asyncio.sleep(0.3)
