"""When a call or text may go out: the recipient's local time, never the server's.

Pure functions of an explicit `now` and a time-zone name, so the workflow (which imports this
module through the sandbox pass-through) and the tests get the same answer.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from models.policy import QuietHours


def in_quiet_hours(local: time, quiet: QuietHours) -> bool:
    if not quiet.enabled or quiet.start == quiet.end:
        return False
    if quiet.start < quiet.end:  # e.g. 13:00-14:00 within one day
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end  # wraps midnight, e.g. 21:00-08:00


def next_allowed_send_time(now: datetime, time_zone: str, quiet: QuietHours) -> datetime:
    """`now` if the recipient's local time is outside quiet hours, else the next quiet-hours end.

    Returns an aware datetime in UTC. Daylight-saving changes are handled by zoneinfo: the end of
    quiet hours is the wall-clock time `quiet.end` on the right local date.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    if not in_quiet_hours(local.timetz().replace(tzinfo=None), quiet):
        return now
    end_date = local.date()
    if local.time() >= quiet.end:  # evening part of the window: quiet hours end tomorrow
        end_date += timedelta(days=1)
    resume = datetime.combine(end_date, quiet.end, tzinfo=zone)
    return resume.astimezone(ZoneInfo("UTC"))
