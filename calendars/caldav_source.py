"""Reading a CalDAV calendar collection as one iCalendar document.

The sweep reads every source the same way: an iCalendar document, expanded on the client with
`recurring-ical-events`. Server-side expansion (CalDAV `<C:expand>`) is not used: servers
differ and some get it wrong (the project's notes report Radicale's wrong across DST changes),
and one expansion for every kind of source keeps sweeps consistent.
So `fetch_caldav` asks the server only which calendar object resources may touch the window
(a time-range calendar-query REPORT, unexpanded) and merges them, whole: a series with all its
RECURRENCE-ID overrides, and every VTIMEZONE once.

Errors are `CalDavError` (a `ValueError`, like the feed reader's errors), one line naming only
the server's origin and what went wrong, because the message ends up in logs and in Temporal
history: never the password, the path or query of the URL, or anything from an event.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import icalendar
from caldav.aio import AsyncDAVClient, Calendar
from caldav.lib import error as caldav_error
from niquests.exceptions import Timeout as NiquestsTimeout

PRODID = "-//Missed Session Outreach//CalDAV source//EN"

# The server places all-day and floating events in a zone of its own choosing, and its own
# recurrence matching may be off across a DST change: ask for a day more on each side, so no
# series that touches the window is missed. The caller expands and filters to the window anyway.
WINDOW_MARGIN = timedelta(days=1)


class CalDavError(ValueError):
    """A CalDAV calendar could not be read. The message is one line, safe to log and to keep in
    Temporal history: the server's scheme://host:port and the HTTP status or "unreachable"."""

    def __init__(self, message: str, *, origin: str | None = None, status: int | None = None):
        super().__init__(message)
        self.origin = origin
        self.status = status


def server_origin(url: str) -> str:
    """`scheme://host:port` of a CalDAV URL: all of it an error message may show (the path can
    hold a user name, the query a token, the userinfo a password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise CalDavError("CalDAV URL is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise CalDavError("CalDAV URL must be an http:// or https:// URL with a host")
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None:
        port = 443 if scheme == "https" else 80
    return f"{scheme}://{host}:{port}"


def _error_for(exc: BaseException, origin: str, timeout: float) -> CalDavError:
    """Translate whatever the caldav library or the network raised into a safe one-liner.
    The original exception is not chained: its text holds the full URL and server bodies."""
    if isinstance(exc, (TimeoutError, NiquestsTimeout)):
        return CalDavError(
            f"CalDAV server {origin} unreachable: no answer within {timeout:g} s", origin=origin
        )
    if isinstance(exc, caldav_error.DAVError):
        status = exc.status
        if status is None and isinstance(exc, caldav_error.NotFoundError):
            status = 404
        if status == 401:
            what = "refused the login (HTTP 401): wrong username or password"
        elif status == 403:
            what = "refused access to the calendar (HTTP 403)"
        elif status == 404:
            what = "has no calendar at that address (HTTP 404)"
        elif status is not None:
            what = f"answered HTTP {status}"
        else:
            what = "did not answer as a CalDAV calendar"
        return CalDavError(f"CalDAV server {origin} {what}", origin=origin, status=status)
    if isinstance(exc, OSError):  # refused, reset, DNS, TLS (niquests' errors are OSErrors too)
        return CalDavError(f"CalDAV server {origin} unreachable", origin=origin)
    return CalDavError(f"CalDAV server {origin} did not answer as a CalDAV calendar", origin=origin)


async def _calendar_objects(
    url: str,
    username: str | None,
    password: str | None,
    start: datetime,
    end: datetime,
    request_timeout: float,
) -> list[tuple[str, str]]:
    """(href, iCalendar text) of every calendar object resource with a VEVENT that may touch
    [start, end], as the server stores it (expand=False: overrides stay in their resource)."""
    async with AsyncDAVClient(
        url=url,
        username=username,
        password=password,
        timeout=request_timeout,  # type: ignore[arg-type]  # per request; niquests takes floats
        enable_rfc6764=False,  # the URL is the collection's: no discovery round-trips
    ) as client:
        calendar = Calendar(client, url=url)  # type: ignore[arg-type]  # caldav.aio accepts it
        found = await calendar.search(  # type: ignore[misc]  # async with an async client
            start=start - WINDOW_MARGIN,
            end=end + WINDOW_MARGIN,
            event=True,
            expand=False,
            # The server's answer, whole: caldav's client-side filter judges each component on
            # its own, while a resource here is kept or dropped as one (a series with all its
            # overrides). The caller expands and filters to the window itself.
            post_filter=False,
        )
        return [(str(obj.url), obj.get_data()) for obj in found]


@dataclass(frozen=True)
class CalDavDocument:
    """The calendar as one iCalendar document, and the calendar objects left out of it."""

    ics: bytes
    unreadable: list[str] = field(default_factory=list)  # "calendar object 3 (id hash ...)"


def _merge(resources: list[tuple[str, str]], origin: str) -> CalDavDocument:
    """One VCALENDAR: every VEVENT of every resource, each distinct VTIMEZONE (by TZID) once.
    A resource that is not iCalendar is left out and named (by position and a hash of its
    href, never its contents), so the sweep reports it and reads the others."""
    merged = icalendar.Calendar()
    merged.add("prodid", PRODID)
    merged.add("version", "2.0")
    timezones: dict[str, icalendar.Timezone] = {}
    events: list[icalendar.Event] = []
    seen: set[str] = set()
    unreadable: list[str] = []
    for number, (href, text) in enumerate(resources, start=1):
        if href in seen:  # a server may list a resource twice (once per matching component)
            continue
        seen.add(href)
        try:
            parsed = icalendar.Calendar.from_ical(text)
        except ValueError:
            digest = hashlib.sha256(href.encode()).hexdigest()[:8]
            unreadable.append(f"calendar object {number} (id hash {digest}): not iCalendar")
            continue
        for component in parsed.subcomponents:
            if isinstance(component, icalendar.Timezone):
                timezones.setdefault(str(component.get("TZID", "")), component)
            elif isinstance(component, icalendar.Event):
                events.append(component)
    for timezone in timezones.values():
        merged.add_component(timezone)
    for event in events:
        merged.add_component(event)
    return CalDavDocument(bytes(merged.to_ical()), unreadable)


async def fetch_caldav(
    url: str,
    username: str | None,
    password: str | None,
    start: datetime,
    end: datetime,
    timeout: float = 30,  # noqa: ASYNC109 - bounds the whole read
) -> bytes:
    """`read_caldav`'s document alone."""
    return (await read_caldav(url, username, password, start, end, timeout)).ics


async def read_caldav(
    url: str,
    username: str | None,
    password: str | None,
    start: datetime,
    end: datetime,
    timeout: float = 30,  # noqa: ASYNC109 - the sweep's contract; bounds the whole read
) -> CalDavDocument:
    """The CalDAV calendar collection at `url` as ONE iCalendar document (bytes of a VCALENDAR)
    holding every event whose series may touch [start, end], unexpanded: each series with its
    RECURRENCE-ID overrides, plus the VTIMEZONEs they use. The caller expands it on the client
    (recurring-ical-events), because servers' own expansion is wrong across DST changes.

    `start` and `end` must be timezone-aware. `timeout` bounds the whole read, in seconds.
    Raises `CalDavError` (a ValueError) when the server is unreachable, refuses the login, has
    no calendar at `url`, answers something else, or does not answer within `timeout`.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("fetch_caldav needs timezone-aware start and end")
    origin = server_origin(url)
    try:
        async with asyncio.timeout(timeout):
            resources = await _calendar_objects(url, username, password, start, end, timeout)
    except Exception as exc:  # whatever the network or caldav raised: the source failed
        raise _error_for(exc, origin, timeout) from None
    return _merge(resources, origin)
