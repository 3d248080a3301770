"""Small iCalendar feeds for sweep tests, written the way calendar exports write them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

NEW_YORK_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:{tzid}
BEGIN:DAYLIGHT
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
TZNAME:EDT
DTSTART:19700308T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
TZNAME:EST
DTSTART:19701101T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
END:STANDARD
END:VTIMEZONE"""
"""America/New_York's rules since 2007, as calendar exports write them (TZID to fill in)."""


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def vevent(
    uid: str,
    start: datetime | str,
    *,
    tzid: str | None = None,
    client: str | None = "C1",
    summary: str = "Session with Alex Kim",
    rrule: str | None = None,
    exdates: Sequence[datetime] = (),
    recurrence_id: datetime | None = None,
    status: str | None = None,
    categories: Sequence[str] = (),
    modified: datetime | None = None,
    extra: Sequence[str] = (),
) -> str:
    """One VEVENT. `start` is a UTC datetime, or a local "YYYYMMDDTHHMMSS" with `tzid`."""
    when = f"DTSTART;TZID={tzid}:{start}" if tzid else f"DTSTART:{utc(start)}"  # type: ignore[arg-type]
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{utc(modified or datetime(2026, 1, 1, tzinfo=UTC))}",
        when,
    ]
    lines.append("DURATION:PT50M")
    lines.append(f"SUMMARY:{summary}")
    if client:
        lines.append(f"DESCRIPTION:Weekly session. client:{client}")
    if rrule:
        lines.append(f"RRULE:{rrule}")
    lines += [f"EXDATE:{utc(d)}" for d in exdates]
    if recurrence_id is not None:
        lines.append(f"RECURRENCE-ID:{utc(recurrence_id)}")
    if status:
        lines.append(f"STATUS:{status}")
    if categories:
        lines.append(f"CATEGORIES:{','.join(categories)}")
    if modified is not None:
        lines.append(f"LAST-MODIFIED:{utc(modified)}")
    lines += list(extra)
    lines.append("END:VEVENT")
    return "\r\n".join(lines)


def calendar(*events: str) -> str:
    body = "\r\n".join(events)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Practice//Calendar test//EN\r\n"
        f"{body}\r\nEND:VCALENDAR\r\n"
    )


def write(path: Path, *events: str) -> Path:
    path.write_text(calendar(*events))
    return path
