"""MissedSessionWorkflow: what a careful clinician does when a client does not show up.

Wait a grace period (they may still arrive); reach out again, leaving a caring message; try the
emergency contact if the client consented; hand the case to the therapist and wait, reminding
them and escalating to a supervisor, until they confirm the client's status; review attendance,
decide the fee, document everything. Every await is a durable timer, a condition on signals,
or an activity. No I/O, no wall clock, no randomness here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from activities.case_records import CaseRecordActivities
    from activities.outreach import OutreachActivities
    from models.case import (
        Attempt,
        CaseContext,
        CaseStatus,
        EscalationLevel,
        MissedSessionInput,
        NextAction,
        NoteEntry,
        Purpose,
        RecipientReach,
        RecipientRole,
        RejectedSignal,
        Resolution,
        Stage,
    )
    from models.directory import Channel
    from models.durations import format_duration
    from models.fees import assess_fee
    from models.outreach import (
        AttendanceQuery,
        FailedOutreach,
        NoteRecord,
        OpenCaseRequest,
        OutreachRequest,
        StageChange,
    )
    from models.quiet_hours import next_allowed_send_time
    from models.signals import (
        Acknowledged,
        AddNote,
        CaseOutcome,
        ClientArrived,
        ClientReached,
        ClientResponded,
    )
    from workflows import search_attributes as sa

SignalModel = TypeVar("SignalModel", bound=BaseModel)

# Messages: providers throttle and fail; retry with backoff, then record the failure and go on.
MESSAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=8,
)
# The case store: never give up on documentation; a database outage just delays the case.
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)

_CHANNEL_LABEL = {Channel.voice: "Call", Channel.sms: "SMS", Channel.email: "Email"}
_ROLE_LABEL = {
    RecipientRole.client: "client",
    RecipientRole.emergency_contact: "emergency contact",
    RecipientRole.therapist: "therapist",
    RecipientRole.supervisor: "supervisor",
}


@workflow.defn
class MissedSessionWorkflow:
    @workflow.init
    def __init__(self, case: MissedSessionInput) -> None:
        self._case = case
        self._policy = case.policy
        self._status = CaseStatus(
            case_id=workflow.info().workflow_id,
            appointment_id=case.appointment_id,
            stage=Stage.grace_wait,
            stage_since=workflow.now(),
        )
        self._context: CaseContext | None = None
        self._arrived = False
        self._reached: ClientReached | None = None
        self._acknowledged = False  # set by the signal, consumed by the therapist wait loop
        self._notes_recorded = 0

    # ------------------------------------------------------------------ the procedure
    @workflow.run
    async def run(self, case: MissedSessionInput) -> Resolution:
        opened_at = workflow.now()
        self._upsert_search_attributes()
        self._context = await workflow.execute_activity_method(
            CaseRecordActivities.open_case,
            OpenCaseRequest(
                case_id=self._status.case_id,
                appointment_id=case.appointment_id,
                client_id=case.client_id,
                therapist_id=case.therapist_id,
                scheduled_start=case.scheduled_start,
                policy_name=self._policy.name,
                opened_at=opened_at,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STORE_RETRY,
            summary="Open the case record",
        )

        # 1. Wait a reasonable time: the client may still arrive.
        grace_ends = max(case.scheduled_start + self._policy.grace, opened_at)
        self._next(f"Grace wait ends (policy {format_duration(self._policy.grace)})", grace_ends)
        if await self._within(grace_ends - workflow.now(), lambda: self._arrived, "grace wait"):
            return await self._close(attended=True, opened_at=opened_at)

        # 2. Reach out again, leaving a caring message.
        await self._enter(Stage.contacting_client, EscalationLevel.client_outreach)
        await self._contact_client()

        # 3. Contact the emergency contact, only with recorded consent.
        if not self._status.client_responded:
            await self._contact_emergency_contact()

        # 4. The therapist confirms; remind them and escalate while waiting, without a limit.
        await self._enter(Stage.awaiting_therapist, EscalationLevel.therapist)
        await self._notify_staff(RecipientRole.therapist, Purpose.therapist_confirmation, "confirm")
        await self._wait_for_therapist()

        # 5. Review session patterns, decide the fee, document.
        return await self._close(attended=False, opened_at=opened_at)

    async def _contact_client(self) -> None:
        context = self._ctx()
        if not context.client.channels:
            await self._document("Client not contacted: no channel with consent and an address.")
            return
        rounds = self._policy.client_rounds(context.client_risk)
        for number, outreach_round in enumerate(rounds, start=1):
            for channel in outreach_round.channels:
                if self._status.client_responded:
                    return
                if channel in context.client.channels:
                    await self._send(
                        channel,
                        RecipientRole.client,
                        Purpose.client_outreach,
                        step=f"client/{number}/{channel.value}",
                        reach=context.client,
                        round_number=number,
                    )
            self._next(f"Wait for the client to respond (round {number})")
            if await self._within(
                outreach_round.then_wait,
                lambda: self._status.client_responded,
                f"wait for client response, round {number}",
            ):
                return

    async def _contact_emergency_contact(self) -> None:
        context = self._ctx()
        contact = context.emergency_contact
        if contact is None:
            reason = context.emergency_contact_skip_reason or "not available"
            self._status.emergency_contact_note = f"Not contacted: {reason}."
            await self._document(f"Emergency contact not contacted: {reason}.")
            return
        await self._enter(Stage.contacting_emergency_contact, EscalationLevel.emergency_contact)
        sent = []
        for channel in self._policy.emergency_contact_channels:
            if channel in contact.channels and not self._status.client_responded:
                attempt = await self._send(
                    channel,
                    RecipientRole.emergency_contact,
                    Purpose.emergency_contact_check,
                    step=f"emergency_contact/{channel.value}",
                    reach=contact,
                )
                if attempt is not None:
                    sent.append(f"{_CHANNEL_LABEL[channel]}: {attempt.result.value}")
        self._status.emergency_contact_note = (
            f"Contacted ({', '.join(sent)})." if sent else "Not contacted: the client responded."
        )
        self._next("Wait for the client to respond after the emergency contact")
        await self._within(
            self._policy.emergency_contact_wait,
            lambda: self._status.client_responded,
            "wait for client response after the emergency contact",
        )

    async def _wait_for_therapist(self) -> None:
        """Wait, with no time limit, for `client_reached`. Reminders every interval (bounded by
        the policy, so history stays small), the supervisor once past the threshold; an
        acknowledgement pauses both for the policy's acknowledgement pause."""
        policy, started = self._policy, workflow.now()
        next_reminder = started + policy.therapist_reminder_every
        supervisor_due = started + policy.supervisor_after
        while self._reached is None:
            now = workflow.now()
            paused_until = self._status.acknowledged_until
            resume = paused_until if paused_until and paused_until > now else now
            due: list[tuple[datetime, str]] = []
            if self._status.therapist_reminders_sent < policy.therapist_max_reminders:
                due.append((max(next_reminder, resume), "reminder"))
            if self._ctx().supervisor is not None and not self._status.supervisor_notified:
                due.append((max(supervisor_due, resume), "supervisor"))
            self._acknowledged = False
            if not due:
                self._next("Wait for the therapist's confirmation (no further reminders)")
                await workflow.wait_condition(lambda: self._reached is not None)
                return
            at, action = min(due)
            label = "Remind the therapist" if action == "reminder" else "Notify the supervisor"
            self._next(label, at)
            if await self._within(
                at - now,
                lambda: self._reached is not None or self._acknowledged,
                "wait for the therapist's confirmation",
            ):
                continue  # reached, or acknowledged: recompute the deadlines
            if action == "reminder":
                self._status.therapist_reminders_sent += 1
                count = self._status.therapist_reminders_sent
                await self._notify_staff(
                    RecipientRole.therapist, Purpose.therapist_reminder, f"reminder/{count}"
                )
                next_reminder = workflow.now() + policy.therapist_reminder_every
            else:
                self._status.supervisor_notified = True
                self._status.escalation_level = EscalationLevel.supervisor
                self._upsert_search_attributes()
                await self._notify_staff(
                    RecipientRole.supervisor,
                    Purpose.supervisor_escalation,
                    "escalation",
                    waited=workflow.now() - started,
                )

    async def _close(self, attended: bool, opened_at: datetime) -> Resolution:
        case, context = self._case, self._ctx()
        self._next("Review attendance and record the resolution")
        await self._flush_notes()
        review = await workflow.execute_activity_method(
            CaseRecordActivities.review_attendance,
            AttendanceQuery(
                case_id=self._status.case_id,
                client_id=case.client_id,
                appointment_id=case.appointment_id,
                scheduled_start=case.scheduled_start,
                window_days=self._policy.attendance_window_days,
                threshold=self._policy.attendance_flag_threshold,
                attended=attended,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STORE_RETRY,
            summary="Review attendance",
        )
        reached = self._reached
        fee_decision = reached.fee if reached else None
        resolution = Resolution(
            case_id=self._status.case_id,
            appointment_id=case.appointment_id,
            client_id=case.client_id,
            therapist_id=case.therapist_id,
            scheduled_start=case.scheduled_start,
            policy_name=self._policy.name,
            opened_at=opened_at,
            closed_at=workflow.now(),
            outcome=reached.outcome if reached else CaseOutcome.attended_late,
            closed_by=reached.by if reached else "client_arrived",
            note=reached.note if reached else "Client arrived during the grace wait.",
            follow_up_plan=(
                reached.follow_up_plan if reached else "None needed; the session took place."
            ),
            fee=assess_fee(self._policy, context.payer_allows_no_show_fee, fee_decision, attended),
            attendance=review,
            attendance_flagged=review.flagged,
            attempts=self._status.attempts,
            notes=self._status.notes,
            rejected_signals=self._status.rejected_signals,
            emergency_contact_note=self._status.emergency_contact_note,
            dry_run=any(a.dry_run for a in self._status.attempts),
        )
        await workflow.execute_activity_method(
            CaseRecordActivities.record_resolution,
            resolution,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STORE_RETRY,
            summary="Record the documented resolution",
        )
        self._status.stage, self._status.stage_since = Stage.closed, workflow.now()
        self._status.next_action = None
        self._upsert_search_attributes(outcome=resolution.outcome)
        self._render_details()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return resolution

    # ------------------------------------------------------------------ signals and query
    @workflow.signal
    def client_arrived(self, payload: RawValue) -> None:
        arrival = self._accept("client_arrived", ClientArrived, payload)
        if arrival is None or self._status.stage is Stage.closed:
            return
        if self._status.stage is Stage.grace_wait:
            self._arrived = True
        else:  # after the grace wait, arriving is a response: outreach stops, therapist closes
            self._status.client_responded = True
            self._append_note("system", "Client arrived after outreach had begun.")

    @workflow.signal
    def client_responded(self, payload: RawValue) -> None:
        response = self._accept("client_responded", ClientResponded, payload)
        if response is None:
            return
        self._status.client_responded = True
        text = f"Client responded via {response.via}." + (
            f" {response.note}" if response.note else ""
        )
        self._append_note("system", text)

    @workflow.signal
    def acknowledged(self, payload: RawValue) -> None:
        ack = self._accept("acknowledged", Acknowledged, payload)
        if ack is None:
            return
        self._status.acknowledged_until = workflow.now() + self._policy.acknowledgement_pause
        self._acknowledged = True
        pause = format_duration(self._policy.acknowledgement_pause)
        self._append_note(ack.by, f"Acknowledged; reminders paused for {pause}. {ack.note}".strip())

    @workflow.signal
    def client_reached(self, payload: RawValue) -> None:
        reached = self._accept("client_reached", ClientReached, payload)
        if reached is not None and self._reached is None:
            self._reached = reached

    @workflow.signal
    async def add_note(self, payload: RawValue) -> None:
        note = self._accept("add_note", AddNote, payload)
        if note is not None:
            self._append_note(note.author, note.text)
            await self._flush_notes()

    @workflow.query
    def case_status(self) -> CaseStatus:
        return self._status

    def _accept(self, name: str, model: type[SignalModel], payload: RawValue) -> SignalModel | None:
        """Validate a signal; a malformed one is recorded as rejected and otherwise ignored."""
        try:
            data = workflow.payload_converter().from_payload(payload.payload)
            return model.model_validate(data)
        except (ValidationError, ValueError, TypeError) as exc:
            error = _describe_error(exc)
            self._status.rejected_signals.append(
                RejectedSignal(at=workflow.now(), signal=name, error=error)
            )
            workflow.logger.warning("rejected malformed signal %s: %s", name, error)
            return None

    # ------------------------------------------------------------------ steps
    async def _send(
        self,
        channel: Channel,
        role: RecipientRole,
        purpose: Purpose,
        step: str,
        reach: RecipientReach,
        round_number: int | None = None,
        waited: timedelta | None = None,
    ) -> Attempt | None:
        """Send one message. Calls and texts wait out the recipient's quiet hours; a client
        response during that wait cancels client and emergency-contact messages, the
        therapist's close-out cancels staff messages."""
        label = f"{_CHANNEL_LABEL[channel]} to {_ROLE_LABEL[role]}" + (
            f", round {round_number}" if round_number else ""
        )
        stop: Callable[[], bool] = (
            (lambda: self._status.client_responded)
            if role in (RecipientRole.client, RecipientRole.emergency_contact)
            else (lambda: self._reached is not None)
        )
        if channel is not Channel.email:
            allowed = next_allowed_send_time(
                workflow.now(), reach.time_zone, self._policy.quiet_hours
            )
            if allowed > workflow.now():
                self._next(f"{label} (deferred: quiet hours)", allowed)
                if await self._within(allowed - workflow.now(), stop, "quiet hours"):
                    return None
        self._next(label, workflow.now())
        request = OutreachRequest(
            case_id=self._status.case_id,
            appointment_id=self._case.appointment_id,
            step=step,
            channel=channel,
            recipient_role=role,
            purpose=purpose,
            round=round_number,
            client_id=self._case.client_id,
            therapist_id=self._case.therapist_id,
            scheduled_start=self._case.scheduled_start,
            waited=waited,
        )
        method = {
            Channel.voice: OutreachActivities.place_call,
            Channel.sms: OutreachActivities.send_sms,
            Channel.email: OutreachActivities.send_email,
        }[channel]
        try:
            attempt = await workflow.execute_activity_method(
                method,
                request,
                start_to_close_timeout=(
                    timedelta(minutes=15) if channel is Channel.voice else timedelta(minutes=1)
                ),
                heartbeat_timeout=timedelta(minutes=2) if channel is Channel.voice else None,
                retry_policy=MESSAGE_RETRY,
                summary=label,
            )
        except ActivityError as err:  # retries ran out: document it, go on to the next channel
            attempt = await workflow.execute_activity_method(
                CaseRecordActivities.record_failed_outreach,
                FailedOutreach(
                    request=request,
                    detail=f"gave up after retries: {_describe_error(err.cause or err)}",
                    at=workflow.now(),
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=STORE_RETRY,
                summary=f"Record failed {label}",
            )
        self._status.attempts.append(attempt)
        self._render_details()
        return attempt

    async def _notify_staff(
        self,
        role: RecipientRole,
        purpose: Purpose,
        step_suffix: str,
        waited: timedelta | None = None,
    ) -> None:
        context = self._ctx()
        reach = context.therapist if role is RecipientRole.therapist else context.supervisor
        if reach is None:
            return
        for channel in self._policy.therapist_channels:
            if channel in reach.channels:
                await self._send(
                    channel,
                    role,
                    purpose,
                    step=f"{role.value}/{step_suffix}/{channel.value}",
                    reach=reach,
                    waited=waited,
                )

    async def _within(self, limit: timedelta, condition: Callable[[], bool], why: str) -> bool:
        """True if `condition` became true within `limit` (a durable timer), else False."""
        if condition():
            return True
        if limit <= timedelta(0):
            return False
        try:
            await workflow.wait_condition(condition, timeout=limit, timeout_summary=why)
            return True
        except TimeoutError:
            return False

    async def _enter(self, stage: Stage, level: int) -> None:
        self._status.stage, self._status.stage_since = stage, workflow.now()
        self._status.escalation_level = max(self._status.escalation_level, level)
        self._upsert_search_attributes()
        self._render_details()
        workflow.logger.info("case entered stage %s", stage.value)
        await self._flush_notes()
        await workflow.execute_activity_method(
            CaseRecordActivities.record_stage,
            StageChange(case_id=self._status.case_id, stage=stage, at=workflow.now()),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STORE_RETRY,
            summary=f"Record stage {stage.value}",
        )

    async def _document(self, text: str) -> None:
        self._append_note("system", text)
        await self._flush_notes()

    def _append_note(self, author: str, text: str) -> None:
        self._status.notes.append(NoteEntry(at=workflow.now(), author=author, text=text))
        self._render_details()

    async def _flush_notes(self) -> None:
        """Write notes not yet in the case store, each under its own key (idempotent)."""
        while self._notes_recorded < len(self._status.notes):
            index = self._notes_recorded
            self._notes_recorded += 1
            await workflow.execute_activity_method(
                CaseRecordActivities.record_note,
                NoteRecord(
                    case_id=self._status.case_id,
                    key=f"{self._status.case_id}/note/{index + 1}",
                    entry=self._status.notes[index],
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=STORE_RETRY,
                summary="Record a case note",
            )

    # ------------------------------------------------------------------ visibility (no PHI)
    def _next(self, description: str, at: datetime | None = None) -> None:
        self._status.next_action = NextAction(description=description, at=at)
        self._render_details()

    def _render_details(self) -> None:
        status = self._status
        dry_runs = sum(1 for a in status.attempts if a.dry_run)
        attempts = f"**Attempts so far:** {len(status.attempts)}" + (
            f" ({dry_runs} DRY RUN: nothing sent)" if dry_runs else ""
        )
        lines = [f"**Stage:** {status.stage.value}", attempts]
        if status.next_action is not None:
            when = status.next_action.at
            suffix = f" at {when.strftime('%Y-%m-%d %H:%M:%S UTC')}" if when else ""
            lines.append(f"**Next:** {status.next_action.description}{suffix}")
        if status.rejected_signals:
            lines.append(f"**Rejected signals:** {len(status.rejected_signals)}")
        workflow.set_current_details("\n\n".join(lines))

    def _upsert_search_attributes(self, outcome: CaseOutcome | None = None) -> None:
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.OUTREACH_STAGE.value_set(self._status.stage.value),
            sa.THERAPIST_ID.value_set(self._case.therapist_id),
            sa.APPOINTMENT_START.value_set(self._case.scheduled_start),
            sa.ESCALATION_LEVEL.value_set(self._status.escalation_level),
        ]
        if outcome is not None:
            updates.append(sa.CASE_OUTCOME.value_set(outcome.value))
        workflow.upsert_search_attributes(updates)

    def _ctx(self) -> CaseContext:
        assert self._context is not None, "case context is loaded first thing in run()"
        return self._context


def _describe_error(exc: BaseException) -> str:
    """A short error description without input values (payloads may carry PHI)."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors()
        )
    return f"{type(exc).__name__}: {str(exc)[:200]}"
