"""The Temporal Schedule that runs the calendar sweep: created or updated idempotently by
`starter.py calendar schedule` (and the demo); visible on the Web UI's Schedules page."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from workflows.calendar_sweep import CalendarSweepWorkflow

SCHEDULE_ID = "calendar-sweep"
CATCH_UP_WINDOW = timedelta(minutes=5)  # after downtime, one sweep catches up (its window)


def sweep_schedule(task_queue: str, every: timedelta) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            CalendarSweepWorkflow.run,
            id="calendar-sweep-run",
            task_queue=task_queue,
            execution_timeout=timedelta(minutes=10),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCH_UP_WINDOW),
        state=ScheduleState(note="Opens missed-session cases from the practice calendars."),
    )


async def ensure_sweep_schedule(client: Client, task_queue: str, every: timedelta) -> str:
    """Create the schedule, or bring an existing one up to date. Returns "created"/"updated".
    An update changes what the schedule does and when, never its state: a schedule that staff
    paused (in the Web UI, with a note saying why) stays paused."""
    schedule = sweep_schedule(task_queue, every)
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
        return "created"
    except ScheduleAlreadyRunningError:

        def update(existing: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule.state = existing.description.schedule.state
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(SCHEDULE_ID).update(update)
        return "updated"
