"""How much the sweep's feed reader costs on top of parsing and expanding the feed.

    python -m bench.calendar_feed

It writes a practice-wide feed (40 therapists, 5 weekly series each, a year of weeks, with
EXDATEs and overrides, local New York times with a VTIMEZONE, client tokens) and measures,
each in a fresh process so that its max RSS is its own:

(a) the bare work: `icalendar.Calendar.from_ical` and `recurring_ical_events.of(...).between`
    over the window, which any reader of the feed has to pay;
(b) `calendars.feed.read_sessions` over the same bytes and window: the same parse and
    expansion, with the mapping to sessions on top.

The target is that (b) costs at most twice (a). Each time is the best of three runs; the peak
of Python allocations (tracemalloc) is taken in a fourth run, because tracing slows the code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path

import icalendar
import recurring_ical_events

from calendars.feed import read_sessions
from models.calendar import (
    CalendarSource,
    EventMapping,
    SourceMode,
    SweepRead,
    SweepRules,
    plan_sweep,
)
from store.case_store import CaseStore

THERAPISTS = 40
SERIES_PER_THERAPIST = 5
WEEKS = 52  # COUNT of each series; 2 EXDATEs leave 50 instances
EXDATES = (10, 30)  # weeks removed from each series (holidays)
MOVED, CANCELLED = 20, 40  # weeks overridden: one instance moved a day later, one cancelled
WINDOW = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC))
SWEEP_WINDOW = (datetime(2026, 6, 15, tzinfo=UTC), datetime(2026, 6, 17, tzinfo=UTC))
REPEATS = 3
TARGET = 2.0

# The zone's rules as icalendar writes them from the tz database (observances to 2038).
# America/New_York's rules since 2007, as calendar exports write them.
VTIMEZONE = "\n".join(
    [
        "BEGIN:VTIMEZONE",
        "TZID:America/New_York",
        "BEGIN:DAYLIGHT",
        "TZOFFSETFROM:-0500",
        "TZOFFSETTO:-0400",
        "TZNAME:EDT",
        "DTSTART:19700308T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU",
        "END:DAYLIGHT",
        "BEGIN:STANDARD",
        "TZOFFSETFROM:-0400",
        "TZOFFSETTO:-0500",
        "TZNAME:EST",
        "DTSTART:19701101T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU",
        "END:STANDARD",
        "END:VTIMEZONE",
    ]
)

SOURCE = CalendarSource(
    source_id="bench",
    kind="ics",
    location="bench.ics",
    mapping=EventMapping(therapist_id="T000"),
)


# ---------------------------------------------------------------------- the feed
def _at(name: str, day: date, hour: int, minute: int = 0) -> str:
    """A DTSTART/DTEND/RECURRENCE-ID line in New York local time."""
    return f"{name};TZID=America/New_York:{day:%Y%m%d}T{hour:02d}{minute:02d}00"


def generate_feed() -> tuple[bytes, dict[str, str], int]:
    """The feed, the directory's emails (for attendee-mapped series), and how many VEVENTs.

    Every fifth series names its client only as an attendee, every fifth other one in
    X-CLIENT-ID; the rest by a "client:" token in the description, as most systems write it.
    """
    first_monday = date(2026, 1, 5)
    events: list[str] = []
    emails: dict[str, str] = {}
    for t in range(THERAPISTS):
        therapist = f"T{100 + t}"
        for n in range(SERIES_PER_THERAPIST):
            client = f"C{1000 + t * SERIES_PER_THERAPIST + n}"
            uid = f"{therapist}-{client}-weekly@bench.example"
            day = first_monday + timedelta(days=n % 5)  # Monday to Friday
            hour = 9 + (t + n * 2) % 9  # 09:00 to 17:00
            kind = (t * SERIES_PER_THERAPIST + n) % 5
            who = [f"DESCRIPTION:Weekly session with Client {client}. client:{client}"]
            if kind == 1:
                email = f"client{client.lower()}@mail.example"
                emails[email] = client
                who = [f"ATTENDEE;CN=Client {client}:mailto:{email}", "DESCRIPTION:Weekly"]
            elif kind == 2:
                who = [f"X-CLIENT-ID:{client}", "DESCRIPTION:Weekly session"]
            common = [
                f"SUMMARY:Session - Client {client}",
                f"X-THERAPIST-ID:{therapist}",
                "DTSTAMP:20251215T120000Z",
                "LOCATION:Room 2",
                *who,
            ]
            exdates = ",".join(
                f"{first_monday + timedelta(days=n % 5, weeks=w):%Y%m%d}T{hour:02d}0000"
                for w in EXDATES
            )
            events.append(
                _vevent(
                    uid,
                    _at("DTSTART", day, hour),
                    _at("DTEND", day, hour, 50),
                    f"RRULE:FREQ=WEEKLY;COUNT={WEEKS}",
                    f"EXDATE;TZID=America/New_York:{exdates}",
                    "SEQUENCE:0",
                    *common,
                )
            )
            moved = day + timedelta(weeks=MOVED)
            events.append(
                _vevent(
                    uid,
                    _at("RECURRENCE-ID", moved, hour),
                    _at("DTSTART", moved + timedelta(days=1), hour),
                    _at("DTEND", moved + timedelta(days=1), hour, 50),
                    "SEQUENCE:1",
                    "LAST-MODIFIED:20260501T120000Z",
                    *common,
                )
            )
            cancelled = day + timedelta(weeks=CANCELLED)
            events.append(
                _vevent(
                    uid,
                    _at("RECURRENCE-ID", cancelled, hour),
                    _at("DTSTART", cancelled, hour),
                    _at("DTEND", cancelled, hour, 50),
                    "STATUS:CANCELLED",
                    "SEQUENCE:1",
                    "LAST-MODIFIED:20261001T120000Z",
                    *common,
                )
            )
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//calendar feed//EN", VTIMEZONE]
    text = "\n".join([*lines, *events, "END:VCALENDAR"]) + "\n"
    return text.replace("\n", "\r\n").encode(), emails, len(events)


def _vevent(uid: str, *lines: str) -> str:
    return "\n".join(["BEGIN:VEVENT", f"UID:{uid}", *lines, "END:VEVENT"])


# ---------------------------------------------------------------------- the two measurements
def bare(ics: bytes, window: tuple[datetime, datetime], emails: dict[str, str]) -> int:
    """(a) What any reader pays: parse, expand over the window."""
    calendar = icalendar.Calendar.from_ical(ics)
    return len(recurring_ical_events.of(calendar, skip_bad_series=True).between(*window))


def sweep(ics: bytes, window: tuple[datetime, datetime], emails: dict[str, str]) -> int:
    """(b) The sweep's reader: the same, mapped to sessions."""
    sessions, unreadable = read_sessions(ics, SOURCE, window[0], window[1], emails)
    if unreadable:
        raise SystemExit(f"the bench feed should read cleanly: {unreadable[:3]}")
    return len(sessions)


_STORE: list[CaseStore] = []  # one SQLite case store per measuring process


def whole_sweep(ics: bytes, window: tuple[datetime, datetime], emails: dict[str, str]) -> int:
    """(c) What a sweep of the source costs before it opens anything: (b), then what the case
    store knows about every session (each one seen before: the lookup's worst case), then the
    sweep's plan (`plan_sweep`). Opening cases is per case, not per event: not counted."""
    return asyncio.run(_whole_sweep(ics, window, emails))


async def _whole_sweep(
    ics: bytes, window: tuple[datetime, datetime], emails: dict[str, str]
) -> int:
    sessions, _ = read_sessions(ics, SOURCE, window[0], window[1], emails)
    if not _STORE:
        folder = tempfile.mkdtemp()
        _STORE.append(CaseStore.from_url(f"sqlite+aiosqlite:///{folder}/bench.db"))
        await _STORE[0].create_schema()
        for s in sessions:
            await _STORE[0].mark_session(s.appointment_id, SOURCE.source_id, s.start)
    store = _STORE[0]
    known = await store.known_sessions(s.appointment_id for s in sessions)
    now = window[0] + (window[1] - window[0]) / 2
    read = SweepRead(sessions=sessions, window=window)
    plan_sweep(read, known, SweepRules(mode=SourceMode.presumed), now)
    await store.close()  # asyncio.run closes the loop: the next run reconnects
    return len(sessions)


MEASUREMENTS: dict[str, Callable[[bytes, tuple[datetime, datetime], dict[str, str]], int]] = {
    "a": bare,
    "b": sweep,
    "c": whole_sweep,
}


def measure(which: str, feed_path: Path, emails_path: Path) -> dict[str, float]:
    """Run in a child process: best of REPEATS, then one traced run; max RSS of this process."""
    run = MEASUREMENTS[which]
    ics = feed_path.read_bytes()
    emails = json.loads(emails_path.read_text())
    rss_before = _max_rss()
    times: list[float] = []
    count = 0
    for _ in range(REPEATS):
        began = time.perf_counter()
        count = run(ics, WINDOW, emails)
        times.append(time.perf_counter() - began)
    sweep_times: list[float] = []
    sweep_count = 0
    for _ in range(REPEATS):
        began = time.perf_counter()
        sweep_count = run(ics, SWEEP_WINDOW, emails)
        sweep_times.append(time.perf_counter() - began)
    rss_after = _max_rss()
    tracemalloc.start()
    run(ics, WINDOW, emails)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "best": min(times),
        "count": count,
        "sweep_best": min(sweep_times),
        "sweep_count": sweep_count,
        "traced_peak": peak,
        "rss_before": rss_before,
        "max_rss": rss_after,
    }


def _max_rss() -> int:
    """This process's max RSS in bytes (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


# ---------------------------------------------------------------------- the report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", choices=sorted(MEASUREMENTS), help=argparse.SUPPRESS)
    parser.add_argument("--feed", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--emails", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.feed, args.emails)))
        return

    began = time.perf_counter()
    ics, emails, vevents = generate_feed()
    series = THERAPISTS * SERIES_PER_THERAPIST
    per_series = WEEKS - len(EXDATES)
    expected = series * per_series
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = _memory()
    print("Calendar feed benchmark: the sweep's reader against bare parse + expansion")
    print(
        f"machine: {os.cpu_count()} cores ({usable} usable), "
        f"{_mib(memory) if memory else 'unknown'} memory, {platform.machine()}; "
        f"Python {platform.python_version()}, icalendar {metadata.version('icalendar')}, "
        f"recurring-ical-events {metadata.version('recurring-ical-events')}"
    )
    print(
        f"feed: {THERAPISTS} therapists x {SERIES_PER_THERAPIST} weekly series, each "
        f"RRULE COUNT={WEEKS} with {len(EXDATES)} EXDATEs, 1 moved and 1 cancelled override; "
        "TZID America/New_York with a VTIMEZONE; clients by token, X-CLIENT-ID or attendee"
    )
    print(
        f"      {vevents} VEVENTs ({series} series + {vevents - series} overrides), "
        f"{len(ics) / 2**20:.2f} MiB"
    )
    print(
        f'"10,000 events" means {expected:,} occurrences in the sweep window '
        f"{WINDOW[0]:%Y-%m-%d} to {WINDOW[1]:%Y-%m-%d} UTC ({series} series x {per_series} "
        "instances each, the moved and cancelled ones included)"
    )

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        feed_path, emails_path = Path(tmp) / "feed.ics", Path(tmp) / "emails.json"
        feed_path.write_bytes(ics)
        emails_path.write_text(json.dumps(emails))
        for which in MEASUREMENTS:  # one after the other: they must not share the cores
            child = subprocess.run(
                [
                    *(sys.executable, "-m", "bench.calendar_feed", "--measure", which),
                    *("--feed", str(feed_path), "--emails", str(emails_path)),
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).resolve().parent.parent,
            )
            results[which] = json.loads(child.stdout)

    a, b = results["a"], results["b"]
    labels = {
        "a": "(a) parse + expand (icalendar, recurring-ical-events)",
        "b": "(b) read_sessions (the same + mapping to sessions)",
        "c": "(c) the sweep: (b) + case-store lookup + plan_sweep",
    }
    print()
    print(
        f"{'':54} {'best of 3':>10} {'occurrences/s':>14} {'tracemalloc peak':>17} "
        f"{'max RSS':>12} {'(at start)':>11}"
    )
    for which, r in results.items():
        best = r["best"]
        print(
            f"{labels[which]:54} {best:9.3f}s {r['count'] / best:14,.0f} "
            f"{_mib(r['traced_peak']):>17} {_mib(r['max_rss']):>12} {_mib(r['rss_before']):>11}"
        )
    ratio = b["best"] / a["best"]
    print()
    print(f"occurrences: (a) {a['count']:,.0f}, (b) {b['count']:,.0f} sessions")
    print(
        "(b) can be cheaper than (a): recurring-ical-events' between() copies the component of "
        "every occurrence, read_sessions reads the source component once per series instead"
    )
    print(
        f"ratio (b)/(a) in time: {ratio:.2f}; target: at most {TARGET:.1f}x the bare parse and "
        f"expansion: {'met' if ratio <= TARGET else 'NOT MET'}"
    )
    print(
        f"a sweep-sized window ({SWEEP_WINDOW[0]:%Y-%m-%d} + 48 h, {b['sweep_count']:.0f} "
        f"sessions): (a) {a['sweep_best']:.3f}s, (b) {b['sweep_best']:.3f}s, "
        f"ratio {b['sweep_best'] / a['sweep_best']:.2f} (the parse dominates)"
    )
    c = results["c"]
    whole = c["best"] / a["best"]
    print(
        f"ratio (c)/(a), the whole sweep against the bare parse and expansion: {whole:.2f}; "
        f"target at most {TARGET:.1f}x: {'met' if whole <= TARGET else 'NOT MET'}"
    )
    print(f"total {time.perf_counter() - began:.1f}s")


if __name__ == "__main__":
    main()
