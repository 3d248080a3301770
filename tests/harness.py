"""Runs cases on the time-skipping server with the real activities, a real SQLite case store
and recording fake providers, so tests can assert what was sent, to whom, when and recorded.
Cases are opened and answered through the case service, as the CLI does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.answers import CaseOutcome, ClientReached, FeeChoice, FeeDecision
from models.case import Attempt, CaseStatus, Resolution, Stage
from models.policy import EscalationPolicy, QuietHours, load_policy
from service.cases import CaseService
from settings import Settings
from store.case_store import CaseStore
from tests import directory_data
from tests.fakes import RecordingProviders
from worker import build_worker
from workflows.missed_session import MissedSessionWorkflow

DEFAULT_POLICY = load_policy("policies/default.toml")
NO_QUIET_HOURS = DEFAULT_POLICY.model_copy(update={"quiet_hours": QuietHours(enabled=False)})

_STEP = timedelta(seconds=5)

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
    started: list[str] = field(default_factory=list)
    own_client: Client | None = None  # e.g. one whose data converter seals payloads
    overrides: dict[str, Any] = field(default_factory=dict)  # settings, e.g. message links

    @property
    def client(self) -> Client:
        return self.own_client or self.env.client

    @property
    def settings(self) -> Settings:
        return Settings(
            call_poll_interval_seconds=0.01,
            practice_name="Riverside Practice",
            temporal_task_queue=self.task_queue,
            **self.overrides,
        )

    @property
    def service(self) -> CaseService:
        return CaseService(self.store, self.settings, self.client)

    def worker(self, **options: Any) -> Worker:
        return build_worker(
            self.client,
            self.settings,
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
    ) -> WorkflowHandle[Any, Resolution]:
        now = await self.env.get_current_time()
        opened = await self.service.open(
            appointment_id=f"A{uuid.uuid4().hex[:10]}",
            client_id=client_id,
            scheduled_start=scheduled_start or now,
            policy=policy,
            now=now,
        )
        self.started.append(opened.case_id)
        return self.client.get_workflow_handle(opened.case_id, result_type=Resolution)

    async def terminate_leftovers(self) -> None:
        """A case left running without a worker would stop the time-skipping server from
        skipping time for every later test: end it."""
        for case_id in self.started:
            handle = self.client.get_workflow_handle(case_id)
            if (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
                await handle.terminate(reason="test finished")

    async def answer(
        self, handle: WorkflowHandle[Any, Resolution], update: str, **data: Any
    ) -> str:
        """Answer the case as a person would, through the case service (an Update)."""
        return await self.service.answer(handle.id, update, data)

    async def run_lengths(self, case_id: str) -> list[int]:
        """Event counts of every run of a case, newest first (following continue-as-new)."""
        lengths, run_id = [], None
        while True:
            history = await self.client.get_workflow_handle(case_id, run_id=run_id).fetch_history()
            lengths.append(len(history.events))
            started = history.events[0].workflow_execution_started_event_attributes
            run_id = started.continued_execution_run_id or None
            if not run_id:
                return lengths

    async def status(self, handle: WorkflowHandle[Any, Resolution]) -> CaseStatus:
        return await handle.query(MissedSessionWorkflow.case_status)

    async def attempts_recorded(self, case_id: str, count: int) -> CaseStatus:
        """Until the case has recorded `count` attempts (nothing left in flight: terminating a
        case while an activity runs can stall the time-skipping server for later tests)."""
        for _ in range(1000):
            status = await self.status_of(case_id)
            if len(status.attempts) >= count:
                return status
            await asyncio.sleep(0.01)
        raise AssertionError(f"case never recorded {count} attempts")

    async def status_of(self, case_id: str) -> CaseStatus:
        return await self.status(self.client.get_workflow_handle(case_id, result_type=Resolution))

    async def advance_to(self, handle: WorkflowHandle[Any, Resolution], stage: str) -> CaseStatus:
        """Skip time until the case reaches `stage` (bounded)."""
        return await self._advance(handle, lambda status: status.stage.value == stage, stage)

    async def awaiting_close_out(self, handle: WorkflowHandle[Any, Resolution]) -> CaseStatus:
        """Skip time until the therapist has been asked to confirm (their messages recorded)."""
        return await self._advance(
            handle, lambda status: status.therapist_asked_at is not None, "therapist asked"
        )

    async def advance_for(self, handle: WorkflowHandle[Any, Resolution], span: timedelta) -> None:
        """Skip `span` of time as `_advance` does: to each next timer, in steps of seconds
        while the case works (one long skip could time out a reminder running meanwhile)."""
        end = await self.env.get_current_time() + span
        while (now := await self.env.get_current_time()) < end:
            await self.env.sleep(min(_next_skip(await self.status(handle), now), end - now))

    async def recorded_to(self, handle: WorkflowHandle[Any, Resolution], role: str) -> CaseStatus:
        """Skip time until the case has recorded a message to `role`: a message whose activity
        is still running when the close-out comes is, rightly, never sent."""
        return await self._advance(
            handle,
            lambda status: any(a.recipient_role.value == role for a in status.attempts),
            f"a message to the {role} recorded",
        )

    async def recorded_unqueried(
        self,
        handle: WorkflowHandle[Any, Resolution],
        done: Callable[[list[Attempt]], bool],
        what: str,
    ) -> None:
        """Skip time until the case store's attempts satisfy `done`, without a single query:
        for counting history events. The time-skipping server writes a workflow task into the
        history for a query that comes while one is running (the dev server does not), so a
        driver that polled `case_status` would count its own polling."""
        for _ in range(2000):
            history = await handle.fetch_history()
            recorded = await self.store.attempts_for_case(handle.id)
            working, dues = _in_flight(history)
            if not working and done(recorded):
                return
            now = await self.env.get_current_time()
            await self.env.sleep(_STEP if working else _skip_to(dues, now))
        raise AssertionError(f"case never reached: {what}")

    async def until_sent(self, count: int) -> None:
        """Let the case work, seconds at a time, until `count` messages went out in all."""
        while len(self.providers.sent) < count:
            await self.env.sleep(_STEP)

    async def round_one_sent(self, handle: WorkflowHandle[Any, Resolution]) -> None:
        """The grace wait over and round 1's call, text and email gone out."""
        await self.advance_to(handle, Stage.contacting_client.value)
        await self.until_sent(3)

    async def _advance(
        self,
        handle: WorkflowHandle[Any, Resolution],
        reached: Callable[[CaseStatus], bool],
        what: str,
    ) -> CaseStatus:
        """Skip straight to the case's next timer, then in steps of seconds while it works:
        skipping minutes while an activity runs would time out its heartbeat (a retry, not
        what a real case sees)."""
        for _ in range(2000):
            status = await self.status(handle)
            if reached(status):
                return status
            await self.env.sleep(_next_skip(status, await self.env.get_current_time()))
        raise AssertionError(f"case never reached: {what}; last stage {status.stage}")

    async def close_as_therapist(
        self,
        handle: WorkflowHandle[Any, Resolution],
        reached: ClientReached = REACHED,
    ) -> Resolution:
        """Let the case escalate to the therapist, who then reports back with `reached`."""
        await self.awaiting_close_out(handle)
        await self.answer(handle, "client_reached", **reached.model_dump(mode="json"))
        return await handle.result()


def _next_skip(status: CaseStatus, now: datetime) -> timedelta:
    """Straight to the case's next timer (at most 6 h), or one step while it works."""
    dues = [d.at for d in status.deferred]
    if status.next_action is not None and status.next_action.at is not None:
        dues.append(status.next_action.at)
    return _skip_to(dues, now)


def _skip_to(dues: list[datetime], now: datetime) -> timedelta:
    """To the first of `dues` still ahead (at most 6 h), or one step if none is."""
    future = [due - now for due in dues if due - now > _STEP]
    return min([*future, timedelta(hours=6)]) if future else _STEP


def _in_flight(history: WorkflowHistory) -> tuple[bool, list[datetime]]:
    """Whether a workflow task or an activity is open in `history`, and when its timers fire."""
    timers: dict[int, datetime] = {}
    activities: set[int] = set()
    task_open = False
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_TIMER_STARTED:
            timeout = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            timers[event.event_id] = event.event_time.ToDatetime(UTC) + timeout
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
            timers.pop(event.timer_fired_event_attributes.started_event_id, None)
        elif kind == EventType.EVENT_TYPE_TIMER_CANCELED:
            timers.pop(event.timer_canceled_event_attributes.started_event_id, None)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activities.add(event.event_id)
        elif kind in _ACTIVITY_ENDS:
            attributes = getattr(event, _ACTIVITY_ENDS[kind])
            activities.discard(attributes.scheduled_event_id)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            task_open = True
        elif kind in _TASK_ENDS:
            task_open = False
    return task_open or bool(activities), list(timers.values())


_ACTIVITY_ENDS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}
_TASK_ENDS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
}


@asynccontextmanager
async def harness(
    env: WorkflowEnvironment, store: CaseStore, **settings: Any
) -> AsyncIterator[Harness]:
    await store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    h = Harness(env, store, overrides=settings)
    try:
        async with h.worker():
            yield h
    finally:
        await h.terminate_leftovers()
