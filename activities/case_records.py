"""Case-store reads and writes the workflow needs, each idempotent (upserts by key), so a
replayed or retried activity changes nothing twice."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.case import AttendanceReview, CaseContext, Resolution
from models.directory import Channel
from models.outreach import AttendanceQuery, NoteRecord, OpenCaseRequest, StageChange
from store.case_store import CaseStore
from store.rows import AttendanceStatus

log = logging.getLogger(__name__)


class CaseRecordActivities:
    def __init__(
        self, store: CaseStore, practice_time_zone: str, on_call_email: str | None = None
    ) -> None:
        self._store = store
        self._practice_time_zone = practice_time_zone
        self._on_call_channels = [Channel.email] if on_call_email else None

    @activity.defn(name="open_case")
    async def open_case(self, request: OpenCaseRequest) -> CaseContext:
        """Record the case and the missed session; return the decision facts (no PHI)."""
        client = await self._store.get_client(request.client_id)
        if client is None:
            raise ApplicationError(
                f"unknown client id {request.client_id!r}", type="UnknownClient", non_retryable=True
            )
        therapist = await self._store.get_therapist(request.therapist_id)
        if therapist is None:
            raise ApplicationError(
                f"unknown therapist id {request.therapist_id!r}",
                type="UnknownTherapist",
                non_retryable=True,
            )
        supervisor = (
            await self._store.get_therapist(therapist.supervisor_id)
            if therapist.supervisor_id
            else None
        )
        await self._store.open_case(request)
        await self._store.record_attendance(
            request.appointment_id, request.client_id, request.scheduled_start, "no_show"
        )
        log.info("case opened", extra={"case_id": request.case_id})
        return CaseContext.from_directory(
            client, therapist, supervisor, self._practice_time_zone, self._on_call_channels
        )

    @activity.defn(name="record_stage")
    async def record_stage(self, change: StageChange) -> None:
        await self._store.set_stage(change)

    @activity.defn(name="record_note")
    async def record_note(self, record: NoteRecord) -> None:
        await self._store.add_note(record)

    @activity.defn(name="review_attendance")
    async def review_attendance(self, query: AttendanceQuery) -> AttendanceReview:
        """Review session patterns: misses in the window before this session, this one included
        unless the client attended after all or the session was cancelled."""
        status: AttendanceStatus = (
            "attended_late"
            if query.attended
            else "late_cancelled"
            if query.session_cancelled
            else "no_show"
        )
        await self._store.record_attendance(
            query.appointment_id, query.client_id, query.scheduled_start, status
        )
        try:  # a window from a lenient (old) input must never crash the case
            since = query.scheduled_start - timedelta(days=query.window_days)
        except OverflowError:
            since = datetime.min.replace(tzinfo=UTC)
        misses = await self._store.missed_sessions(query.client_id, since, query.scheduled_start)
        late = await self._store.missed_sessions(
            query.client_id, since, query.scheduled_start, status="late_cancelled"
        )
        return AttendanceReview(
            window_days=query.window_days,
            misses_in_window=len(misses),
            threshold=query.threshold,
            missed_session_starts=misses,
            late_cancellations_in_window=len(late),
        )

    @activity.defn(name="record_resolution")
    async def record_resolution(self, draft: Resolution) -> Resolution:
        """Keep the documented resolution beyond Temporal's retention. Its attempts are the
        store's rows: a message that a close-out raced with (sent, but its result not yet
        seen by the workflow) is documented too, so store and resolution always agree."""
        # Every activity of the case has ended by now (the close-out waits for them).
        await self._store.finish_abandoned_attempts(draft.case_id, draft.closed_at)
        stored = await self._store.attempts_for_case(draft.case_id)
        attempts = stored if stored else draft.attempts
        resolution = draft.model_copy(
            update={"attempts": attempts, "dry_run": any(a.dry_run for a in attempts)}
        )
        await self._store.save_resolution(resolution)
        log.info("resolution recorded", extra={"case_id": resolution.case_id})
        return resolution
