"""Wall-clock rules whose answer must be recorded in history (a local activity's result is):
the time-zone database may differ on the worker that replays a case next month."""

from __future__ import annotations

from datetime import datetime

from temporalio import activity

from models.outreach import SendTimeQuery
from models.quiet_hours import next_allowed_send_time


@activity.defn(name="next_send_time")
async def next_send_time(query: SendTimeQuery) -> datetime:
    """The earliest time a call or text may reach this recipient (now, or when quiet hours end)."""
    return next_allowed_send_time(query.now, query.time_zone, query.quiet)
