"""The client's attendance over the review window, as a small server-rendered SVG: geometry
here (pure), drawing in the template. Kinds differ by shape as well as colour (a cross for a
missed session, a triangle for a late cancellation, a dot for one attended), and the same facts
are in the chart's title and in a sentence beside it, for screen readers and print."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

WIDTH, HEIGHT = 320, 64
LEFT, RIGHT, AXIS_Y = 12, 308, 34

KIND = {
    "no_show": "missed",
    "late_cancelled": "late_cancelled",
    "attended": "attended",
    "attended_late": "attended",
}


@dataclass(frozen=True)
class Mark:
    x: float
    kind: str  # missed | late_cancelled | attended
    label: str  # e.g. "Nov 23: missed"


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class AttendanceChart:
    window_days: int
    marks: list[Mark]
    ticks: list[Tick]
    summary: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = RIGHT
    axis_y: int = AXIS_Y


_WORDS = {"missed": "missed", "late_cancelled": "cancelled late", "attended": "attended"}


def attendance_chart(
    sessions: list[tuple[datetime, str]], until: datetime, window_days: int
) -> AttendanceChart:
    """Sessions (start, attendance status) between `until - window_days` and `until`."""
    since = until - timedelta(days=window_days)
    span = (until - since).total_seconds() or 1.0

    def x(moment: datetime) -> float:
        fraction = min(max((moment - since).total_seconds() / span, 0.0), 1.0)
        return round(LEFT + fraction * (RIGHT - LEFT), 1)

    marks = []
    for start, status in sessions:
        kind = KIND.get(status, "attended")
        marks.append(Mark(x(start), kind, f"{start:%b %-d}: {_WORDS[kind]}"))
    ticks = [
        Tick(x(since + timedelta(days=day)), f"{since + timedelta(days=day):%b %-d}")
        for day in range(0, window_days + 1, max(window_days // 3, 1))
    ]
    counts = {kind: sum(1 for m in marks if m.kind == kind) for kind in _WORDS}
    summary = (
        f"In the last {window_days} days: {_count(counts['missed'], 'missed session')} "
        f"(this one included), {_count(counts['late_cancelled'], 'late cancellation')}, "
        f"{_count(counts['attended'], 'session')} attended on record."
    )
    return AttendanceChart(window_days, marks, ticks, summary)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
