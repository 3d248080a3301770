"""The calendar sweep's activities: which sources there are, and one sweep of one source.

A sweep of a source is one activity: everything it does goes through the case service and is
idempotent (a case opens once per appointment, through its workflow id; answers and records are
kept in the case store), so a retried or repeated sweep does nothing twice. What it returns
enters history: ids, counts and times only (`SweepReport`).
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from models.calendar import SweepReport
from service.calendar_sweep import CalendarService


class SweepRequest(BaseModel):
    source_id: str


class CalendarSweepActivities:
    def __init__(self, calendars: CalendarService) -> None:
        self._calendars = calendars

    @activity.defn(name="list_calendar_sources")
    async def list_calendar_sources(self) -> list[str]:
        return await self._calendars.source_ids()

    @activity.defn(name="sweep_calendar_source")
    async def sweep_calendar_source(self, request: SweepRequest) -> SweepReport:
        """Now is the Temporal server's clock (so time-skipping tests and catch-up agree)."""
        now = activity.info().current_attempt_scheduled_time
        return await self._calendars.sweep_source(request.source_id, now)
