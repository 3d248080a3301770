"""Fault drill: `worker.py` killed with SIGKILL in every stage of a case (the grace timer, a
call in progress, an SMS request that reached the provider and is unanswered, between two
rounds, awaiting the therapist), each time replaced by a new worker process.

The case finishes; the endpoint took no message twice; the store's attempts agree with the
resolution."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.case import CaseStatus, Resolution, Stage
from models.policy import load_policy
from service.cases import CaseService
from settings import Settings
from store.case_store import CaseStore
from store.directory_csv import import_directory_csv
from tests.drills import until
from tests.fake_provider_server import FakeProviderServer
from tests.harness import REACHED
from workflows.missed_session import MissedSessionWorkflow

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.drill(seconds=85)
CLIENT_PHONE = "+15555550101"
POLICY = """
name = "drill"
demo = true
grace = "6s"
emergency_contact_channels = ["sms", "email"]
emergency_contact_wait = "4s"
therapist_channels = ["email"]
therapist_reminder_every = "1h"
therapist_max_reminders = 1
supervisor_after = "2h"
supervisor_renotify_every = "2h"
message_retry_for = "30s"
quiet_hours = { enabled = false }
client_rounds_before_emergency_contact = { standard = 2, elevated = 2, high = 1 }
[[rounds]]
channels = ["voice", "sms", "email"]
then_wait = "6s"
[[rounds]]
channels = ["sms"]
then_wait = "4s"
"""


# A query while no worker is there yet fails: ask again.
ANY_ERROR = (Exception,)


class Workers:
    """worker.py processes, one at a time, each killed with SIGKILL when asked."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env
        self._process: asyncio.subprocess.Process | None = None
        self.kills = 0

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "worker.py",
            cwd=ROOT,
            env=self._env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    async def kill_and_replace(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        await self._process.wait()
        self.kills += 1
        await self.start()

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGKILL)
            await self._process.wait()


async def test_a_worker_killed_in_every_stage_loses_and_doubles_nothing(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    policy_file = tmp_path / "drill.toml"
    policy_file.write_text(POLICY)
    database = f"sqlite+aiosqlite:///{tmp_path}/cases.db"
    store = CaseStore.from_url(database)
    await store.create_schema()
    await import_directory_csv(store, ROOT / "samples" / "directory.csv")
    client: Client = dev_server.client
    async with FakeProviderServer() as fake:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SENDGRID_"))},
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_TASK_QUEUE": f"kill-{uuid.uuid4().hex[:8]}",
            "DATABASE_URL": database,
            "METRICS_ADDRESS": "",
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "test-token",
            "TWILIO_FROM_NUMBER": "+15555550100",
            "TWILIO_API_BASE_URL": fake.base_url,
            "SENDGRID_API_KEY": "SG.test-key",
            "SENDGRID_FROM_EMAIL": "care@example.org",
            "SENDGRID_API_HOST": fake.base_url,
            "CALL_POLL_INTERVAL_SECONDS": "0.3",
            # A killed worker's cases move to the next one after this (not the default 10 s).
            "WORKER_STICKY_TIMEOUT_SECONDS": "1",
        }
        settings = Settings(temporal_task_queue=env["TEMPORAL_TASK_QUEUE"])
        service = CaseService(store, settings, client)
        workers = Workers(env)
        await workers.start()
        try:
            now = datetime.now(UTC)
            opened = await service.open(
                appointment_id=f"K{uuid.uuid4().hex[:10]}",
                client_id="C100",
                scheduled_start=now,
                policy=load_policy(policy_file),
                now=now,
            )
            handle = client.get_workflow_handle(opened.case_id, result_type=Resolution)

            async def status() -> CaseStatus:
                return await handle.query(MissedSessionWorkflow.case_status)

            async def stage_is(stage: Stage) -> bool:
                return (await status()).stage is stage

            # 1. the grace timer
            await until(lambda: stage_is(Stage.grace_wait), "the grace wait", 90, ANY_ERROR)
            await workers.kill_and_replace()
            # 2. a call in progress, and 3. an SMS request the provider took but has not
            # answered yet: round 1 places both at once.
            fake.call_status[CLIENT_PHONE] = "in-progress"
            fake.delay_next("Messages.json", 4.0)

            async def call_and_sms_in_flight() -> bool:
                return bool(fake.calls()) and bool(fake.sms())

            await until(call_and_sms_in_flight, "a call placed and an SMS sent", 90, ANY_ERROR)
            await workers.kill_and_replace()
            fake.call_status[CLIENT_PHONE] = "completed"

            # 4. between rounds: round 1 done, the wait before round 2 running
            async def between_rounds() -> bool:
                current = await status()
                return current.stage is Stage.contacting_client and len(current.attempts) == 3

            await until(between_rounds, "round 1 recorded", 90, ANY_ERROR)
            await workers.kill_and_replace()
            # 5. awaiting the therapist
            await until(lambda: _asked(status), "the therapist asked", 120, ANY_ERROR)
            await workers.kill_and_replace()
            close_out = {**REACHED.model_dump(mode="json"), "by": "T100"}
            await service.close_out(opened.case_id, close_out)
            resolution = await handle.result()
        finally:
            await workers.stop()
        stored = await store.attempts_for_case(opened.case_id)
    await store.close()

    assert workers.kills == 4  # grace, call + SMS, between rounds, awaiting the therapist
    steps = Counter(a.step for a in resolution.attempts)
    assert steps and max(steps.values()) == 1
    assert sorted(a.step for a in stored) == sorted(steps)  # the store agrees
    assert {(a.step, a.result) for a in stored} == {(a.step, a.result) for a in resolution.attempts}
    recorded = Counter(a.provider_id for a in stored if a.provider_id)
    assert max(recorded.values()) == 1
    creates = [
        r
        for r in fake.requests
        if r.method == "POST"
        and (r.path.endswith(("Messages.json", "Calls.json")) or "mail" in r.path)
    ]
    # One request per step at most: the SMS whose answer the kill cut off is not sent again.
    assert len(creates) == len(stored), [(r.path, r.status) for r in creates]
    assert resolution.outcome.value == "reached_safe"


async def _asked(status: Callable[[], Awaitable[CaseStatus]]) -> bool:
    return (await status()).therapist_asked_at is not None
