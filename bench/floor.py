"""Temporal's floor for the shape of one case: a workflow that does nothing but what the case
costs Temporal (as many activities, local activities and timers, in the same batches, and one
Update), with no-op activities. What a full case costs beyond it is the product's own work.

The shape is read from the history of one real case (`shape_of`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory


class Batch(BaseModel):
    """What one workflow task of the case started, side by side."""

    activities: int = 0
    local_activities: int = 0
    timers: list[float] = []  # seconds


class Shape(BaseModel):
    batches: list[Batch]

    def counts(self) -> tuple[int, int, int]:
        return (
            sum(b.activities for b in self.batches),
            sum(b.local_activities for b in self.batches),
            sum(len(b.timers) for b in self.batches),
        )


def shape_of(history: WorkflowHistory) -> Shape:
    """The batches of commands one case issued, in order, from its history. Timers that were
    cancelled (a wait cut short by an answer) never held the case up: only fired ones count."""
    fired = {
        e.timer_fired_event_attributes.started_event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED
    }
    batches: list[Batch] = []
    current = Batch()
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            if current.activities or current.local_activities or current.timers:
                batches.append(current)
            current = Batch()
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            current.activities += 1
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            if event.marker_recorded_event_attributes.marker_name == "core_local_activity":
                current.local_activities += 1
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED and event.event_id in fired:
            timeout = event.timer_started_event_attributes.start_to_fire_timeout
            current.timers.append(timeout.ToTimedelta().total_seconds())
    if current.activities or current.local_activities or current.timers:
        batches.append(current)
    return Shape(batches=batches)


@activity.defn
async def noop() -> None:
    """Does nothing: what an activity costs Temporal and the SDK alone."""


@workflow.defn
class FloorWorkflow:
    """Runs a case's shape with no-op activities, then waits for one Update, then ends."""

    def __init__(self) -> None:
        self._closed = False

    @workflow.run
    async def run(self, shape: Shape) -> int:
        for batch in shape.batches:
            work = [
                workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=30))
                for _ in range(batch.activities)
            ]
            work += [
                workflow.execute_local_activity(noop, start_to_close_timeout=timedelta(seconds=30))
                for _ in range(batch.local_activities)
            ]
            work += [workflow.sleep(seconds) for seconds in batch.timers]
            await asyncio.gather(*work)
        await workflow.wait_condition(lambda: self._closed)
        return len(shape.batches)

    @workflow.update
    def close(self) -> str:
        self._closed = True
        return "closed"
