"""CalendarSweepWorkflow: one sweep of every practice calendar, run by a Temporal Schedule
(every 60 s by default, overlapping runs skipped; see `temporal_env/schedule.py`).

Each source is swept by its own activity, side by side, so one unreadable calendar delays no
other. The result lists what each sweep did: ids, counts and times only, never a name.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.calendar_sweep import CalendarSweepActivities, SweepRequest
    from models.calendar import SweepReport

SWEEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,  # the next scheduled sweep tries again anyway
)


@workflow.defn
class CalendarSweepWorkflow:
    @workflow.run
    async def run(self) -> list[SweepReport]:
        source_ids = await workflow.execute_activity_method(
            CalendarSweepActivities.list_calendar_sources,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=SWEEP_RETRY,
            summary="List calendar sources",
        )
        reports = await asyncio.gather(
            *(
                workflow.execute_activity_method(
                    CalendarSweepActivities.sweep_calendar_source,
                    SweepRequest(source_id=source_id),
                    start_to_close_timeout=timedelta(minutes=5),
                    retry_policy=SWEEP_RETRY,
                    summary=f"Sweep calendar {source_id}",
                )
                for source_id in source_ids
            ),
            return_exceptions=True,
        )
        done = [r for r in reports if isinstance(r, SweepReport)]
        failed = len(reports) - len(done)
        workflow.set_current_details(
            f"**Sources:** {len(source_ids)}; swept {len(done)}, failed {failed}\n\n"
            + "\n\n".join(f"**{r.source_id}:** {r.summary()}" for r in done)
        )
        return done
