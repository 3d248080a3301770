"""Runs cases on the time-skipping server with the real activities, a real SQLite case store
and recording fake providers, so tests can assert what was sent, to whom, when and recorded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.case import CaseStatus, MissedSessionInput, Resolution, Stage, case_id_for
from models.policy import EscalationPolicy, QuietHours, load_policy
from models.signals import CaseOutcome, ClientReached, FeeChoice, FeeDecision
from settings import Settings
from store.case_store import CaseStore
from tests import directory_data
from tests.fakes import RecordingProviders
from worker import build_worker
from workflows.missed_session import MissedSessionWorkflow

DEFAULT_POLICY = load_policy("policies/default.toml")
NO_QUIET_HOURS = DEFAULT_POLICY.model_copy(update={"quiet_hours": QuietHours(enabled=False)})

REACHED = ClientReached(
    outcome=CaseOutcome.reached_safe,
    note="Spoke with client; overslept, is safe.",
    follow_up_plan="Keep next week's session; add a reminder text the day before.",
    fee=FeeDecision(decision=FeeChoice.charge, reason="per signed cancellation policy"),
)


@dataclass
class Harness:
    env: WorkflowEnvironment
    store: CaseStore
    providers: RecordingProviders = field(default_factory=RecordingProviders)
    task_queue: str = field(default_factory=lambda: f"tq-{uuid.uuid4().hex[:8]}")

    @property
    def client(self) -> Client:
        return self.env.client

    def worker(self, **options: Any) -> Worker:
        settings = Settings(call_poll_interval_seconds=0.01, practice_name="Riverside Practice")
        return build_worker(
            self.client,
            settings,
            self.store,
            self.providers.bundle(),
            task_queue=self.task_queue,
            **options,
        )

    async def start(
        self,
        client_id: str = "C1",
        policy: EscalationPolicy = NO_QUIET_HOURS,
        scheduled_start: datetime | None = None,
    ) -> WorkflowHandle[MissedSessionWorkflow, Resolution]:
        appointment = f"A{uuid.uuid4().hex[:10]}"
        start = scheduled_start or await self.env.get_current_time()
        case = MissedSessionInput(
            appointment_id=appointment,
            client_id=client_id,
            therapist_id="T1",
            scheduled_start=start,
            policy=policy,
        )
        return await self.client.start_workflow(
            MissedSessionWorkflow.run,
            case,
            id=case_id_for(appointment),
            task_queue=self.task_queue,
            result_type=Resolution,
        )

    async def status(self, handle: WorkflowHandle[MissedSessionWorkflow, Resolution]) -> CaseStatus:
        return await handle.query(MissedSessionWorkflow.case_status)

    async def advance_to(
        self, handle: WorkflowHandle[MissedSessionWorkflow, Resolution], stage: str
    ) -> CaseStatus:
        """Skip time in small steps until the case reaches `stage` (bounded)."""
        for _ in range(400):
            status = await self.status(handle)
            if status.stage.value == stage:
                return status
            await self.env.sleep(timedelta(minutes=5))
        raise AssertionError(f"case never reached {stage}; last stage {status.stage}")

    async def close_as_therapist(
        self,
        handle: WorkflowHandle[MissedSessionWorkflow, Resolution],
        reached: ClientReached = REACHED,
    ) -> Resolution:
        """Let the case escalate to the therapist, who then reports back with `reached`."""
        await self.advance_to(handle, Stage.awaiting_therapist.value)
        await handle.signal(MissedSessionWorkflow.client_reached, reached)
        return await handle.result()


@asynccontextmanager
async def harness(env: WorkflowEnvironment, store: CaseStore) -> AsyncIterator[Harness]:
    await store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    h = Harness(env, store)
    async with h.worker():
        yield h
