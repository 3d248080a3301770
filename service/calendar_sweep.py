"""The calendar sweep: the practice's calendars open, answer and document cases on their own.

One sweep reads each calendar source for a window around now, decides with
`models.calendar.plan_sweep` what to do, and does it through the case service, like every
other caller: open a case (once per appointment, ever: the workflow id), tell a case the client
checked in (`client_arrived`), or that its session was cancelled or moved (`session_cancelled`),
and record late cancellations for the fee decision. What was done is kept in the case store, so
a sweep run twice, overlapping, or after days of downtime does nothing twice.

A source that cannot be read, or an event that maps to nobody, is reported (the source's status,
the worker log) and skipped: one bad source or event never stops the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from calendars.caldav_source import CalDavDocument, CalDavError, read_caldav
from calendars.feed import FeedError, read_sessions
from calendars.fetch import fetch_ics
from models.calendar import (
    CalendarSource,
    KnownSession,
    NoteAbsence,
    NoteCancellation,
    NoteRestored,
    OpenCase,
    ReportArrival,
    ReportCancellation,
    SourceKind,
    SweepAction,
    SweepRead,
    SweepReport,
    SweepRules,
    current_appointment_id,
    plan_sweep,
)
from models.case import case_id_for
from models.durations import format_duration
from models.edge import EdgeError, at_edge, is_id
from models.policy import EscalationPolicy, PolicyError, load_policy
from service.cases import CaseError, CaseService
from settings import Settings
from store.calendar_records import SourceRow
from store.case_store import CaseStore
from store.errors import StoreError
from store.secrets import SecretBox, SecretsKeyError

log = logging.getLogger(__name__)

Reader = Callable[[CalendarSource, str | None, datetime, datetime], Awaitable[CalDavDocument]]
LOOKAHEAD_EXTRA = timedelta(days=1)  # beyond the late-cancellation window: moves, cancellations


_URL_SCHEMES = frozenset({"http", "https", "webcal", "webcals"})


def shown_location(location: str) -> str:
    """What may be shown of a calendar URL: scheme and host ("https://calendar.google.com/…")."""
    url = urlsplit(location)
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme.lower()}://{url.hostname}{port}/…"


class CalendarError(Exception):
    """A problem with a calendar source, in the product's words (one line)."""


async def read_source(
    source: CalendarSource, password: str | None, start: datetime, end: datetime
) -> CalDavDocument:
    """The source's iCalendar text: a file or URL as it is, or a CalDAV calendar's events
    (with the calendar objects that could not be read, to report)."""
    if source.kind is SourceKind.caldav:
        return await read_caldav(source.location, source.username, password, start, end)
    return CalDavDocument(await fetch_ics(source.location))


class CalendarService:
    def __init__(
        self,
        store: CaseStore,
        settings: Settings,
        cases: CaseService,
        reader: Reader = read_source,
    ) -> None:
        self._store = store
        self._settings = settings
        self._cases = cases
        self._reader = reader

    def _secrets(self) -> SecretBox:
        key = self._settings.secrets_key
        return SecretBox.from_key_or_file(
            key.get_secret_value() if key else None, self._settings.secrets_key_file
        )

    # ------------------------------------------------------------------ sources
    async def add(self, config: dict[str, object], password: str | None, now: datetime) -> str:
        """Add (or replace) a source; the password is stored encrypted, never printed."""
        try:
            source = at_edge(CalendarSource, config)
        except EdgeError as exc:
            raise CalendarError(f"calendar source: {exc}") from None
        if password and source.kind is not SourceKind.caldav:
            raise CalendarError("a password is only used by CalDAV sources")
        url = urlsplit(source.location)
        if url.username or url.password:
            raise CalendarError(
                "calendar source: location: no user or password in the URL: use --username "
                "and --password-env (the password is stored encrypted)"
            )
        secrets: dict[str, str] = {}
        if password:
            secrets["password"] = password
        if url.scheme.lower() in _URL_SCHEMES and url.hostname:
            # A private feed's address is a password: Google's "secret address" and most
            # practice-management exports carry their token in the path or the query. The
            # whole URL is sealed; what is shown (and kept in plain text) is scheme and host.
            secrets["location"] = source.location
            source = source.model_copy(update={"location": shown_location(source.location)})
        sealed = self._secrets().encrypt(json.dumps(secrets)) if secrets else None
        await self._store.save_source(source, sealed, now)
        return source.source_id

    async def remove(self, source_id: str) -> None:
        if not is_id(source_id):  # no source has it (and the store could not look it up)
            raise CalendarError(f"no such calendar source: {_shown(source_id)}")
        if not await self._store.remove_source(source_id):
            raise CalendarError(f"no such calendar source: {source_id}")

    async def sources(self) -> list[SourceRow]:
        return await self._store.list_sources()

    async def source_ids(self) -> list[str]:
        return [row.source.source_id for row in await self._store.list_sources()]

    # ------------------------------------------------------------------ sweeping
    async def sweep(self, now: datetime) -> list[SweepReport]:
        """Sweep every source; each is independent of the others: one that fails (the store,
        a bug) is reported as not swept and the others are swept all the same."""
        reports = []
        for row in await self._store.list_sources():
            source_id = row.source.source_id
            try:
                reports.append(await self.sweep_source(source_id, now))
            except (CalendarError, CaseError, StoreError) as exc:  # said in the product's words
                log.warning("calendar source %s: sweep failed: %s", source_id, exc)
                reports.append(_failed(source_id, now, str(exc)))
            except Exception as exc:  # a bug: the traceback is for the log, not the report
                log.exception("calendar source %s: sweep failed", source_id)
                reports.append(_failed(source_id, now, f"sweep failed ({type(exc).__name__})"))
        return reports

    async def sweep_source(self, source_id: str, now: datetime) -> SweepReport:
        row = await self._store.get_source(source_id)
        if row is None:
            raise CalendarError(f"no such calendar source: {source_id}")
        source = row.source
        policy = self._policy()
        rules = SweepRules(
            mode=source.mode,
            late_cancellation_window=policy.late_cancellation_window,
            catch_up=policy.calendar_catch_up,
        )
        start = now - rules.catch_up
        end = now + rules.late_cancellation_window + LOOKAHEAD_EXTRA
        report = SweepReport(source_id=source_id, read_ok=False, window_start=start, window_end=end)
        try:
            read = await self._read(row, (start, end), report)
        except (FeedError, CalDavError, SecretsKeyError, OSError) as exc:
            report.error = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            log.warning("calendar source %s not read: %s", source_id, report.error)
            await self._store.record_read(source_id, now, error=report.error)
            return report
        report.read_ok = True
        report.sessions = len(read.sessions)
        known = await self._known(read, source_id)
        for action in plan_sweep(read, known, rules, now):
            await self._apply(action, source, policy, now, report, known)
        await self._store.record_read(source_id, now, swept_until=now, summary=report.summary())
        log.info("calendar source %s swept: %s", source_id, report.summary())
        return report

    async def _known(self, read: SweepRead, source_id: str) -> dict[str, KnownSession]:
        """What the store knows of the sessions read, of this source's open cases in the
        window, and of the moved appointments the sessions read stand for."""
        start, end = read.window
        ids = {s.appointment_id for s in read.sessions} | set(read.present)
        ids |= set(await self._store.open_calendar_sessions(source_id, start, end))
        known = await self._store.known_sessions(ids)
        moved = {current_appointment_id(s, known) for s in read.sessions} - known.keys()
        if moved:
            known |= await self._store.known_sessions(moved)
        return known

    async def _read(
        self,
        row: SourceRow,
        window: tuple[datetime, datetime],
        report: SweepReport,
    ) -> SweepRead:
        source = row.source
        sealed = await self._store.source_secret(source.source_id)
        secrets = json.loads(self._secrets().decrypt(sealed)) if sealed else {}
        if "location" in secrets:
            source = source.model_copy(update={"location": secrets["location"]})
        document = await self._reader(source, secrets.get("password"), *window)
        emails, shared = await self._store.client_ids_by_email()
        # In a thread: a big feed (or an odd rule) must not stall the worker's other activities.
        sessions, unreadable = await asyncio.to_thread(
            read_sessions, document.ics, source, *window, emails, shared
        )
        report.skipped += document.unreadable + [f"{u.event}: {u.reason}" for u in unreadable]
        for problem in unreadable:
            log.warning("calendar source %s: skipped %s", source.source_id, problem.event)
        return SweepRead(
            sessions=sessions,
            window=window,
            complete=not document.unreadable and all(u.appointment_id for u in unreadable),
            present=frozenset(u.appointment_id for u in unreadable if u.appointment_id),
            previous_read_at=row.last_read_at,
            source_added_at=row.created_at,
        )

    def _policy(self) -> EscalationPolicy:
        try:
            return load_policy(self._settings.calendar_policy_file)
        except PolicyError as exc:
            raise CalendarError(str(exc)) from None

    async def _apply(
        self,
        action: SweepAction,
        source: CalendarSource,
        policy: EscalationPolicy,
        now: datetime,
        report: SweepReport,
        known: dict[str, KnownSession],
    ) -> None:
        """Do one action through the case service; a refusal is reported, never fatal. A store
        error propagates: Temporal retries the sweep, whose actions are each idempotent."""
        mark = self._store.mark_session
        source_id = source.source_id
        seen = known.get(action.appointment_id)
        start = seen.scheduled_start if seen and seen.scheduled_start else now
        try:
            if isinstance(action, OpenCase):
                await self._open(action, source_id, policy, now, report)
            elif isinstance(action, ReportArrival):
                await self._answer_once(
                    action.appointment_id, "client_arrived", {"note": "Checked in (calendar)."}
                )
                await mark(action.appointment_id, source_id, start, arrival_reported_at=now)
                report.arrivals.append(action.appointment_id)
            elif isinstance(action, ReportCancellation):
                data: dict[str, object] = {"by": "calendar"}
                if action.moved_to is not None:
                    data["moved_to"] = action.moved_to.isoformat()
                await self._answer_once(action.appointment_id, "session_cancelled", data)
                await mark(action.appointment_id, source_id, start, cancellation_reported_at=now)
                report.cancellations.append(action.appointment_id)
            elif isinstance(action, NoteCancellation):
                await self._note_cancellation(action, source_id, now, report)
            elif isinstance(action, NoteRestored):
                await self._store.forget_cancellation(action.appointment_id)
            elif isinstance(action, NoteAbsence):
                await self._store.set_absence(action.appointment_id, now if action.absent else None)
        except CaseError as exc:
            said = _without_values(str(exc))  # an id an event named may be anything, a name
            report.skipped.append(f"{action.appointment_id}: {said}")
            log.warning("calendar source %s: %s: %s", source_id, action.appointment_id, said)

    async def _note_cancellation(
        self, action: NoteCancellation, source_id: str, now: datetime, report: SweepReport
    ) -> None:
        """Decided once: the attendance record first, then the mark that says it is done (a
        crash between the two repeats an idempotent upsert, never skips it)."""
        if action.late:
            await self._store.record_attendance(
                action.appointment_id, action.client_id, action.start, "late_cancelled"
            )
            report.late_cancellations.append(action.appointment_id)
        flags: dict[str, datetime] = {"cancellation_seen_at": now}
        if action.late and action.cancelled_at is not None:
            flags["late_cancellation_at"] = action.cancelled_at
        await self._store.mark_session(action.appointment_id, source_id, action.start, **flags)

    async def _open(
        self,
        action: OpenCase,
        source_id: str,
        policy: EscalationPolicy,
        now: datetime,
        report: SweepReport,
    ) -> None:
        same = await self._store.calendar_case_at(source_id, action.client_id, action.start)
        if same is not None:  # the event was re-keyed (a series edited): one session, one case
            report.skipped.append(f"{action.appointment_id}: the same session as case {same}")
            await self._store.mark_session(
                action.appointment_id, source_id, action.start, case_opened_at=now
            )
            return
        opened = await self._cases.open(
            appointment_id=action.appointment_id,
            client_id=action.client_id,
            therapist_id=action.therapist_id,
            scheduled_start=action.start,
            policy=policy,
            now=now,
        )
        late = max(action.late_by, timedelta(0))
        if opened.new:
            minutes = timedelta(minutes=int(late.total_seconds() // 60))
            when = f"{format_duration(minutes)} after" if minutes else "at"
            text = (
                f"Opened by the practice calendar (source {source_id}) {when} the session's start."
            )
            await self._cases.answer(
                opened.case_id, "add_note", {"author": "calendar", "text": text}
            )
        await self._store.mark_session(
            action.appointment_id,
            source_id,
            action.start,
            case_opened_at=now,
            opened_late_seconds=int(late.total_seconds()),
        )
        report.opened[action.appointment_id] = late.total_seconds()

    async def _answer_once(self, appointment_id: str, update: str, data: dict[str, object]) -> None:
        """An answer to a case that closed meanwhile is done already: nothing to repeat."""
        try:
            await self._cases.answer(case_id_for(appointment_id), update, data)
        except CaseError as exc:
            if not any(done in str(exc) for done in _DONE_ALREADY):
                raise


# What a case answers when the sweep's answer was given before, or the case has ended.
_DONE_ALREADY = (
    "cancellation is already recorded",
    "case is already closed",
    "is no longer running in Temporal",
)


def _without_values(text: str) -> str:
    """A refusal in the product's words, with the quoted values (ids from an event) left out."""
    return re.sub(r"'[^']*'", "'…'", text)


def _failed(source_id: str, now: datetime, error: str) -> SweepReport:
    return SweepReport(
        source_id=source_id, read_ok=False, window_start=now, window_end=now, error=error
    )


def _shown(text: str) -> str:
    """An id from outside in a one-line message: escaped, and cut if long."""
    shown = ascii(text)[1:-1]
    return shown if len(shown) <= 64 else shown[:64] + "..."
