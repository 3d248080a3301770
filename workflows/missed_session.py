"""MissedSessionWorkflow: what a careful clinician does when a client does not show up.

Wait a grace period (they may still arrive); reach out again, leaving a caring message; try the
emergency contact if the client consented; hand the case to the therapist and wait, reminding
them and escalating to a supervisor, until they confirm the client's status; review attendance,
decide the fee, document everything.

People answer a case through Workflow Updates (validated before anything enters history). The
therapist's close-out ends the case at any stage: the procedure runs as its own task, which the
close-out cancels; a message already handed to a provider is recorded, nothing new is sent.

Every await is a durable timer, a condition on what Updates set, or an activity. No I/O, no wall
clock, no randomness here. A change to the commands this code issues goes behind
`workflow.patched` (see README, "Versioning"); tests/histories/ replay in CI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from activities.case_records import CaseRecordActivities
    from activities.clock import next_send_time
    from activities.outreach import OutreachActivities
    from models.answers import (
        INTENT_LABELS,
        Acknowledged,
        AddNote,
        AnswerReceipt,
        CaseOutcome,
        ClientArrived,
        ClientReached,
        ClientResponded,
        SessionCancelled,
    )
    from models.case import (
        Attempt,
        AttemptResult,
        CarriedState,
        CaseContext,
        CaseHeader,
        CaseStatus,
        Closing,
        EscalationLevel,
        MissedSessionInput,
        NextAction,
        NoteEntry,
        Purpose,
        RecipientReach,
        RecipientRole,
        RejectedSignal,
        Resolution,
        StaffSituation,
        Stage,
        TherapistWait,
    )
    from models.directory import Channel
    from models.durations import format_duration
    from models.edge import EdgeError, at_edge
    from models.fees import assess_fee
    from models.outreach import (
        AttendanceQuery,
        NoteRecord,
        OpenCaseRequest,
        OutreachBatch,
        OutreachRequest,
        SendTimeQuery,
        StageChange,
    )
    from models.report import local_label
    from workflows import search_attributes as sa

AnswerModel = TypeVar("AnswerModel", bound=BaseModel)

# Messages: a provider error is retried by the activity's own clock (the policy's
# `message_retry_for`) and then recorded failed. Anything else (a bug, a misconfiguration) keeps
# retrying, visible as a failing activity in the Web UI, and the case resumes once it is fixed.
MESSAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
# The case store: never give up on documentation; a database outage just delays the case.
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
STORE_TIMEOUT = timedelta(seconds=30)
CALL_HEARTBEAT = timedelta(seconds=30)  # a close-out reaches a ringing call within this
# Past this many events the therapist wait continues as new with the case state, so a case
# that waits for months keeps a small history (Temporal warns at 10,240 events).
HISTORY_EVENT_BUDGET = 600
# Store writes as local activities, and reminders by `therapist_reminder_channels` (patch id).
LEAN_HISTORY = "lean-history"
# A step's messages to one recipient (a round's call, text and email) in one activity, with one
# quiet-hours check (patch id): a third of the activities and workflow tasks per case.
MESSAGES_TOGETHER = "messages-together"
_Arg = TypeVar("_Arg")
_Result = TypeVar("_Result")
LONGEST_TIMER = timedelta(days=3650)  # lenient input never makes an impossible timer

_CHANNEL_LABEL = {Channel.voice: "Call", Channel.sms: "SMS", Channel.email: "Email"}
_ROLE_LABEL = {
    RecipientRole.client: "client",
    RecipientRole.emergency_contact: "emergency contact",
    RecipientRole.therapist: "therapist",
    RecipientRole.supervisor: "supervisor",
    RecipientRole.on_call: "on-call",
}
_UNUSABLE_RESULTS = {AttemptResult.opted_out, AttemptResult.invalid_recipient}
_CLOSING_TEXT = {
    CaseOutcome.attended_late: ("Client arrived during the grace wait.", "None needed."),
    CaseOutcome.cancelled_by_operator: (
        "Cancelled by an operator in Temporal before the therapist closed the case.",
        "None recorded: the therapist should document the client's status.",
    ),
}


@workflow.defn
class MissedSessionWorkflow:
    @workflow.init
    def __init__(self, case: MissedSessionInput) -> None:
        self._case = case
        self._policy = case.policy
        self._reached: ClientReached | None = None
        self._acknowledged = False  # wakes the therapist wait to recompute its deadlines
        self._continue_as_new = False
        carried = case.carried
        if carried is not None:  # a new run of a case that continued as new
            self._status = carried.status
            self._context: CaseContext | None = carried.context
            self._opened_at = carried.opened_at
            self._notes_recorded = carried.notes_recorded
            self._wait: TherapistWait | None = carried.wait
            self._runs = carried.runs + 1
            return
        self._status = CaseStatus(
            case_id=workflow.info().workflow_id,
            appointment_id=case.appointment_id,
            stage=Stage.grace_wait,
            stage_since=workflow.now(),
        )
        self._context = None
        self._status.attendance_window_days = case.policy.attendance_window_days
        self._opened_at = workflow.now()
        self._notes_recorded = 0
        self._wait = None
        self._runs = 1

    # ------------------------------------------------------------------ the case
    @workflow.run
    async def run(self, case: MissedSessionInput) -> Resolution:
        procedure: asyncio.Task[None] | None = None
        try:
            self._upsert_search_attributes()
            if self._context is None:
                self._context = await self._open_case()
            procedure = asyncio.create_task(self._procedure())
            await workflow.wait_condition(
                lambda: procedure.done() or self._status.closing is not None
            )
            if not procedure.done():  # a close-out: stop all outreach at once
                await _stop(procedure)
            if not procedure.cancelled():
                procedure.result()  # a bug in the procedure fails the workflow task, visibly
            if self._status.closing is None and self._continue_as_new:
                await self._flush_notes()
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._carry())
            return await self._close()
        except asyncio.CancelledError:
            # "Request Cancellation" in the Web UI: document it like any other close.
            if self._status.closing is None:
                self._set_closing(CaseOutcome.cancelled_by_operator, "operator")
            if procedure is not None and not procedure.done():
                await _stop(procedure)
            await self._close()
            raise

    async def _procedure(self) -> None:
        """Seed 004's procedure, from the grace wait to the therapist's confirmation. Returns
        only when the history is long enough to continue as new; a close-out cancels it."""
        if self._wait is None:
            await self._first_pass()
        await self._wait_for_therapist()

    async def _first_pass(self) -> None:
        case, policy = self._case, self._policy
        # 1. Wait a reasonable time: the client may still arrive.
        grace_ends = max(case.scheduled_start + policy.grace, self._opened_at)
        self._next(f"Grace wait ends (policy {format_duration(policy.grace)})", grace_ends)
        await self._within(grace_ends - workflow.now(), self._session_cancelled, "grace wait")
        if not self._session_cancelled():
            await self._reach_out()

        # 4. The therapist confirms; remind them and escalate while waiting, without a limit.
        await self._enter(Stage.awaiting_therapist, EscalationLevel.therapist)
        if self._session_cancelled():
            situation = StaffSituation.session_cancelled
        elif self._status.client_responded:
            situation = StaffSituation.client_responded
        else:
            situation = StaffSituation.nobody_reached
        self._next("Ask the therapist to confirm the client's status")
        await self._notify_staff(
            RecipientRole.therapist, Purpose.therapist_confirmation, "confirm", situation=situation
        )
        now = workflow.now()
        self._status.therapist_asked_at = now
        self._wait = TherapistWait(
            started=now,
            next_reminder=now + policy.therapist_reminder_every,
            supervisor_due=now + policy.supervisor_after,
            next_renotify=now + policy.supervisor_renotify_every,
        )

    async def _reach_out(self) -> None:
        """Steps 2 and 3: the client, then the emergency contact."""
        policy = self._policy
        # 2. Reach out again, leaving a caring message (the therapist of a high-risk client
        #    hears at once that outreach has started).
        await self._enter(Stage.contacting_client, EscalationLevel.client_outreach)
        heads_up = None
        if self._ctx().client_risk in policy.notify_therapist_at_start:
            self._status.therapist_told_at_start = True
            heads_up = asyncio.create_task(
                self._notify_staff(
                    RecipientRole.therapist,
                    Purpose.therapist_outreach_started,
                    "outreach-started",
                    situation=StaffSituation.outreach_started,
                )
            )
        await self._contact_client()

        # 3. Contact the emergency contact, only with recorded consent.
        if not self._outreach_over():
            await self._contact_emergency_contact()
        if heads_up is not None:
            await heads_up

    async def _contact_client(self) -> None:
        context = self._ctx()
        if not context.client.channels:
            await self._document("Client not contacted: no channel with consent and an address.")
            return
        rounds = self._policy.client_rounds(context.client_risk)
        for number, outreach_round in enumerate(rounds, start=1):
            if self._outreach_over():
                return
            # Channels of a round go out side by side: a call deferred by quiet hours or a
            # provider outage on one channel does not hold the others.
            await self._send_step(
                [c for c in outreach_round.channels if c in context.client.channels],
                RecipientRole.client,
                Purpose.client_outreach,
                step=f"client/{number}",
                reach=context.client,
                round_number=number,
            )
            ends = workflow.now() + outreach_round.then_wait
            self._next(f"Wait for the client to respond (round {number})", ends)
            if await self._within(
                outreach_round.then_wait,
                self._outreach_over,
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
        attempts = await self._send_step(
            [c for c in self._policy.emergency_contact_channels if c in contact.channels],
            RecipientRole.emergency_contact,
            Purpose.emergency_contact_check,
            step="emergency_contact",
            reach=contact,
        )
        sent = [f"{_CHANNEL_LABEL[a.channel]}: {a.result.value}" for a in attempts if a]
        self._status.emergency_contact_note = (
            f"Contacted ({', '.join(sent)})." if sent else "Not contacted: the client responded."
        )
        wait = self._policy.emergency_contact_wait
        self._next("Wait for the client to respond after the emergency contact", self._in(wait))
        await self._within(
            wait,
            self._outreach_over,
            "wait for client response after the emergency contact",
        )

    async def _wait_for_therapist(self) -> None:
        """Wait, with no time limit, for the close-out. Reminders every interval up to the
        policy's maximum, the supervisor once past the threshold, then the supervisor (or the
        practice's on-call address, or the therapist) again every `supervisor_renotify_every`:
        nothing waits silently. An acknowledgement pauses all of them for a while."""
        policy, wait, status = self._policy, self._wait, self._status
        assert wait is not None
        while True:
            if workflow.info().get_current_history_length() > HISTORY_EVENT_BUDGET:
                self._continue_as_new = True
                return
            now = workflow.now()
            paused_until = status.acknowledged_until
            resume = paused_until if paused_until and paused_until > now else now
            reminders_left = status.therapist_reminders_sent < policy.therapist_max_reminders
            supervisor_pending = self._ctx().supervisor is not None and not (
                status.supervisor_notified
            )
            due: list[tuple[datetime, str]] = []
            if reminders_left:
                due.append((max(wait.next_reminder, resume), "reminder"))
            if supervisor_pending:
                due.append((max(wait.supervisor_due, resume), "supervisor"))
            if not reminders_left and not supervisor_pending:
                renotify = wait.next_renotify or now
                due.append((max(renotify, resume), "renotify"))
            at, action = min(due)
            labels = {
                "reminder": "Remind the therapist",
                "supervisor": "Notify the supervisor",
                "renotify": f"Tell the {_ROLE_LABEL[self._renotify_role()]} again",
            }
            self._next(labels[action], at)
            self._acknowledged = False
            if await self._within(
                at - now, lambda: self._acknowledged, "wait for the therapist's close-out"
            ):
                continue  # acknowledged: recompute the deadlines
            waited = workflow.now() - wait.started
            if action == "reminder":
                status.therapist_reminders_sent += 1
                await self._notify_staff(
                    RecipientRole.therapist,
                    Purpose.therapist_reminder,
                    f"reminder/{status.therapist_reminders_sent}",
                    channels=policy.therapist_reminder_channels,
                )
                wait.next_reminder = workflow.now() + policy.therapist_reminder_every
            elif action == "supervisor":
                status.supervisor_notified = True
                status.escalation_level = EscalationLevel.supervisor
                self._upsert_search_attributes()
                await self._notify_staff(
                    RecipientRole.supervisor,
                    Purpose.supervisor_escalation,
                    "escalation",
                    waited=waited,
                )
            else:
                status.supervisor_reminders_sent += 1
                role = self._renotify_role()
                await self._notify_staff(
                    role,
                    Purpose.therapist_reminder
                    if role is RecipientRole.therapist
                    else Purpose.supervisor_reminder,
                    f"renotice/{status.supervisor_reminders_sent}",
                    waited=waited,
                )
            wait.next_renotify = workflow.now() + policy.supervisor_renotify_every

    def _renotify_role(self) -> RecipientRole:
        context = self._ctx()
        if context.supervisor is not None:
            return RecipientRole.supervisor
        if context.on_call is not None:
            return RecipientRole.on_call
        return RecipientRole.therapist

    async def _close(self) -> Resolution:
        """Review session patterns, decide the fee, document: the resolution outlives Temporal."""
        case, closing = self._case, self._status.closing
        assert closing is not None
        self._status.deferred = []
        self._next("Review attendance and record the resolution")
        await self._flush_notes()
        attended = closing.outcome is CaseOutcome.attended_late
        review = await self._store(
            CaseRecordActivities.review_attendance,
            AttendanceQuery(
                case_id=self._status.case_id,
                client_id=case.client_id,
                appointment_id=case.appointment_id,
                scheduled_start=case.scheduled_start,
                window_days=self._policy.attendance_window_days,
                threshold=self._policy.attendance_flag_threshold,
                attended=attended,
                session_cancelled=self._status.session_cancelled_at is not None,
            ),
            "Review attendance",
        )
        reached = self._reached
        note, plan = (
            (reached.note, reached.follow_up_plan)
            if reached
            else _CLOSING_TEXT.get(closing.outcome, ("", ""))
        )
        payer_allows = bool(self._context and self._context.payer_allows_no_show_fee)
        resolution = Resolution(
            **dict(self._header()),
            closed_at=workflow.now(),
            outcome=closing.outcome,
            closed_by=closing.by,
            note=note,
            follow_up_plan=plan,
            fee=assess_fee(self._policy, payer_allows, reached.fee if reached else None, attended),
            attendance=review,
            attendance_flagged=review.flagged,
            attempts=self._status.attempts,
            notes=self._status.notes,
            rejected_signals=self._status.rejected_signals,
            emergency_contact_note=self._status.emergency_contact_note,
            dry_run=any(a.dry_run for a in self._status.attempts),
            client_intent=self._status.client_intent,
            client_materials=reached.materials if reached else "",
        )
        resolution = await self._store(
            CaseRecordActivities.record_resolution, resolution, "Record the documented resolution"
        )
        self._status.stage, self._status.stage_since = Stage.closed, workflow.now()
        self._status.next_action = None
        self._upsert_search_attributes(outcome=resolution.outcome)
        self._render_details()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return resolution

    # ------------------------------------------------------------------ answers (Updates)
    # Each validator runs before anything enters history and rejects with the reason in the
    # product's words; the handler then decodes leniently (a replay by newer code must too).
    @workflow.update
    def client_reached(self, answer: RawValue) -> AnswerReceipt:
        """The therapist's close-out: ends the case at any stage."""
        self._reached = _decode(ClientReached, answer)
        self._set_closing(self._reached.outcome, self._reached.by)
        return self._receipt(
            f"closed as {self._reached.outcome.value}; outreach stopped, "
            "the documented resolution is being recorded"
        )

    @client_reached.validator
    def _validate_client_reached(self, answer: RawValue) -> None:
        self._accept_while_open(ClientReached, answer)

    @workflow.update
    def client_arrived(self, answer: RawValue) -> AnswerReceipt:
        arrival = _decode(ClientArrived, answer)
        if self._status.stage is Stage.grace_wait:
            self._set_closing(CaseOutcome.attended_late, "client_arrived")
            if arrival.note:
                self._append_note("front desk", arrival.note)
            return self._receipt("closed as attended late; nothing was sent")
        self._status.client_responded = True
        self._append_note("system", "Client arrived after outreach had begun." + _tail(arrival))
        return self._receipt("outreach stops; the therapist still closes the case")

    @client_arrived.validator
    def _validate_client_arrived(self, answer: RawValue) -> None:
        self._accept_while_open(ClientArrived, answer)

    @workflow.update
    async def client_responded(self, answer: RawValue) -> AnswerReceipt:
        response = _decode(ClientResponded, answer)
        self._status.client_responded = True
        said = ""
        if response.intent is not None:  # state and note text only: no new command
            self._status.client_intent = response.intent
            said = f': "{INTENT_LABELS[response.intent]}"'
        self._append_note("system", f"Client responded via {response.via}{said}." + _tail(response))
        await self._record_answer_now()
        return self._receipt(
            "outreach to the client and the emergency contact stops; "
            "the therapist still closes the case"
        )

    @client_responded.validator
    def _validate_client_responded(self, answer: RawValue) -> None:
        self._accept_while_open(ClientResponded, answer)

    @workflow.update
    async def session_cancelled(self, answer: RawValue) -> AnswerReceipt:
        """The calendar says the session was cancelled or moved after the case opened."""
        cancelled = _decode(SessionCancelled, answer)
        self._status.session_cancelled_at = workflow.now()
        self._status.session_moved_to = cancelled.moved_to
        self._render_details()
        if cancelled.moved_to is not None:
            moved = local_label(cancelled.moved_to, self._staff_zone())
            text = f"The session was moved to {moved} after the case opened; outreach stopped."
        else:
            text = "The session was cancelled after the case opened; outreach stopped."
        self._append_note(cancelled.by, text + _tail(cancelled))
        await self._flush_notes()
        return self._receipt("outreach stops; the therapist still closes the case")

    @session_cancelled.validator
    def _validate_session_cancelled(self, answer: RawValue) -> None:
        self._accept_while_open(SessionCancelled, answer)
        if self._session_cancelled():
            raise ApplicationError(
                "the session's cancellation is already recorded in this case",
                type="AlreadyCancelled",
                non_retryable=True,
            )

    @workflow.update
    async def acknowledged(self, answer: RawValue) -> AnswerReceipt:
        ack = _decode(Acknowledged, answer)
        until = workflow.now() + self._policy.acknowledgement_pause
        self._status.acknowledged_until = until
        self._acknowledged = True
        pause = format_duration(self._policy.acknowledgement_pause)
        self._append_note(ack.by, f"Acknowledged; reminders paused for {pause}." + _tail(ack))
        await self._record_answer_now()
        return self._receipt(f"reminders paused until {local_label(until, self._staff_zone())}")

    @acknowledged.validator
    def _validate_acknowledged(self, answer: RawValue) -> None:
        self._accept_while_open(Acknowledged, answer)

    @workflow.update
    async def add_note(self, answer: RawValue) -> AnswerReceipt:
        note = _decode(AddNote, answer)
        self._append_note(note.author, note.text)
        await self._flush_notes()
        return self._receipt("note recorded in the case")

    @add_note.validator
    def _validate_add_note(self, answer: RawValue) -> None:
        if self._status.stage is Stage.closed:
            self._check_open()
        _validated(AddNote, answer)

    async def _record_answer_now(self) -> None:
        """An acknowledgement or a client's response is in the case store at once (it used to
        wait for the next stage). Behind a patch: cases opened before it replay unchanged."""
        if workflow.patched("answers-recorded-at-once"):
            await self._flush_notes()

    @workflow.signal(dynamic=True)
    def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Answers are Updates. A signal (from the Web UI's "Send a Signal", or an old script)
        is never decoded, so no payload can wedge the case; it is recorded as rejected."""
        self._status.rejected_signals.append(
            RejectedSignal(
                at=workflow.now(),
                signal=name[:100],
                error="signals are not accepted: send the Update of the same name instead",
            )
        )
        workflow.logger.warning("rejected a signal: answers are Updates")
        self._render_details()

    @workflow.query
    def case_status(self) -> CaseStatus:
        return self._status

    def _accept_while_open(self, model: type[BaseModel], answer: RawValue) -> None:
        """Validate an answer that only an open case takes: a closed case says who closed it
        and when; then the answer is checked at the edge."""
        self._check_open()
        _validated(model, answer)

    def _check_open(self) -> None:
        closing = self._status.closing
        if closing is not None:
            when = local_label(closing.at, self._staff_zone())
            raise ApplicationError(
                f"case is already closed: {closing.outcome.value} by {closing.by} at {when}",
                type="CaseClosed",
                non_retryable=True,
            )

    def _set_closing(self, outcome: CaseOutcome, by: str) -> None:
        self._status.closing = Closing(outcome=outcome, by=by, at=workflow.now())
        self._render_details()

    def _receipt(self, accepted: str) -> AnswerReceipt:
        return AnswerReceipt(case_id=self._status.case_id, accepted=accepted)

    def _staff_zone(self) -> str:
        return self._context.therapist.time_zone if self._context else "UTC"

    # ------------------------------------------------------------------ steps
    async def _open_case(self) -> CaseContext:
        case = self._case
        try:  # lenient input may still hold dates no timer can reach: fail visibly, not stuck
            _ = case.scheduled_start + self._policy.grace + LONGEST_TIMER
        except OverflowError:
            raise ApplicationError(
                "case input cannot be processed: scheduled_start is out of range",
                type="InvalidCaseInput",
                non_retryable=True,
            ) from None
        return await self._store(
            CaseRecordActivities.open_case,
            OpenCaseRequest(**dict(self._header())),
            "Open the case record",
        )

    async def _send_step(
        self,
        channels: list[Channel],
        role: RecipientRole,
        purpose: Purpose,
        step: str,
        reach: RecipientReach,
        round_number: int | None = None,
        waited: timedelta | None = None,
        situation: StaffSituation | None = None,
    ) -> list[Attempt]:
        """One step's messages to one recipient, side by side; each message's key is
        "<step>/<channel>". Since MESSAGES_TOGETHER they go in one activity, after one
        quiet-hours check: email at once, calls and texts when the recipient's quiet hours end.
        Cases opened before it send one activity per message, as they always did."""
        if not channels:
            return []
        facts = (round_number, waited, situation)
        if not workflow.patched(MESSAGES_TOGETHER):
            sent = await asyncio.gather(
                *(
                    self._send(c, role, purpose, f"{step}/{c.value}", reach, *facts)
                    for c in channels
                )
            )
            return [attempt for attempt in sent if attempt is not None]
        self._stop_if_closing()
        usable = [c for c in channels if _address(role, c) not in self._status.unusable]
        calls_and_texts: list[Channel] = [c for c in usable if c is not Channel.email]
        allowed = workflow.now()
        if calls_and_texts and self._policy.quiet_hours.enabled:
            allowed = await workflow.execute_local_activity(
                next_send_time,
                SendTimeQuery(
                    now=workflow.now(), time_zone=reach.time_zone, quiet=self._policy.quiet_hours
                ),
                start_to_close_timeout=timedelta(seconds=10),
                summary="Quiet hours?",
            )
        groups: list[tuple[list[Channel], datetime | None]] = [(usable, None)]
        if allowed > workflow.now():
            emails: list[Channel] = [c for c in usable if c is Channel.email]
            groups = [(emails, None), (calls_and_texts, allowed)]
        sent_groups = await asyncio.gather(
            *(
                self._send_together(group, not_before, role, purpose, step, *facts)
                for group, not_before in groups
                if group
            )
        )
        return [attempt for group in sent_groups for attempt in group]

    async def _send_together(
        self,
        channels: list[Channel],
        not_before: datetime | None,
        role: RecipientRole,
        purpose: Purpose,
        step: str,
        round_number: int | None = None,
        waited: timedelta | None = None,
        situation: StaffSituation | None = None,
    ) -> list[Attempt]:
        """Messages to one recipient in one activity, once `not_before` has passed (quiet
        hours); a client response meanwhile cancels messages about the client."""
        about_client = role in (RecipientRole.client, RecipientRole.emergency_contact)

        def stop() -> bool:
            return about_client and self._outreach_over()

        if not_before is not None:
            deferrals = [
                NextAction(
                    description=f"{_label(c, role, round_number)} (quiet hours)", at=not_before
                )
                for c in channels
            ]
            self._status.deferred.extend(deferrals)
            self._render_details()
            try:
                if await self._within(not_before - workflow.now(), stop, "quiet hours"):
                    return []
            finally:
                for deferral in deferrals:
                    self._status.deferred.remove(deferral)
        if stop():
            return []
        requests = [
            self._request(c, role, purpose, f"{step}/{c.value}", round_number, waited, situation)
            for c in channels
        ]
        try:
            attempts = await workflow.execute_activity_method(
                OutreachActivities.send_messages,
                OutreachBatch(messages=requests),
                # A call rings and is polled for its outcome, heartbeating (a dead worker is
                # noticed within 30 s, and a close-out reaches the ringing call); texts and
                # emails are one request each (at most 20 s), side by side: 30 s in all.
                start_to_close_timeout=(
                    timedelta(minutes=15) if Channel.voice in channels else timedelta(seconds=30)
                ),
                heartbeat_timeout=CALL_HEARTBEAT if Channel.voice in channels else None,
                retry_policy=MESSAGE_RETRY,
                # A message handed to a provider is recorded even when the case closes meanwhile.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                summary=_labels(channels, role, round_number),
            )
        except ActivityError as err:
            # After a close-out no message's failure is the case's (see `_send`).
            if isinstance(err.cause, CancelledError) or self._status.closing is not None:
                raise asyncio.CancelledError() from None
            raise
        for attempt in attempts:
            self._status.attempts.append(attempt)
            self._learn(role, _address(role, attempt.channel), attempt)
        self._render_details()
        self._stop_if_closing()
        return attempts

    def _request(
        self,
        channel: Channel,
        role: RecipientRole,
        purpose: Purpose,
        step: str,
        round_number: int | None,
        waited: timedelta | None,
        situation: StaffSituation | None,
    ) -> OutreachRequest:
        about_client = role in (RecipientRole.client, RecipientRole.emergency_contact)
        return OutreachRequest(
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
            situation=situation,
            # Staff hear what the client chose on their page (activity input only: replays).
            client_intent=None if about_client else self._status.client_intent,
            give_up_after=self._policy.message_retry_for,
        )

    async def _send(
        self,
        channel: Channel,
        role: RecipientRole,
        purpose: Purpose,
        step: str,
        reach: RecipientReach,
        round_number: int | None = None,
        waited: timedelta | None = None,
        situation: StaffSituation | None = None,
    ) -> Attempt | None:
        """Send one message in an activity of its own (cases opened before MESSAGES_TOGETHER),
        unless its address proved unusable in this case. Calls and texts wait out the
        recipient's quiet hours; a client response during that wait cancels client and
        emergency-contact messages."""
        self._stop_if_closing()
        address = _address(role, channel)
        if address in self._status.unusable:
            return None
        label = _label(channel, role, round_number)
        about_client = role in (RecipientRole.client, RecipientRole.emergency_contact)

        def stop() -> bool:
            return about_client and self._outreach_over()

        if channel is not Channel.email and self._policy.quiet_hours.enabled:
            allowed = await workflow.execute_local_activity(
                next_send_time,
                SendTimeQuery(
                    now=workflow.now(), time_zone=reach.time_zone, quiet=self._policy.quiet_hours
                ),
                start_to_close_timeout=timedelta(seconds=10),
                summary="Quiet hours?",
            )
            if allowed > workflow.now():
                deferral = NextAction(description=f"{label} (quiet hours)", at=allowed)
                self._status.deferred.append(deferral)
                self._render_details()
                try:
                    if await self._within(allowed - workflow.now(), stop, "quiet hours"):
                        return None
                finally:
                    self._status.deferred.remove(deferral)
        if stop():
            return None
        request = self._request(channel, role, purpose, step, round_number, waited, situation)
        method = {
            Channel.voice: OutreachActivities.place_call,
            Channel.sms: OutreachActivities.send_sms,
            Channel.email: OutreachActivities.send_email,
        }[channel]
        try:
            attempt = await workflow.execute_activity_method(
                method,
                request,
                # A text or an email is one request (at most 20 s, then "may have been sent"):
                # a worker that died mid-request is noticed after 30 s, not minutes.
                start_to_close_timeout=(
                    timedelta(minutes=15) if channel is Channel.voice else timedelta(seconds=30)
                ),
                heartbeat_timeout=CALL_HEARTBEAT if channel is Channel.voice else None,
                retry_policy=MESSAGE_RETRY,
                # A message handed to a provider is recorded even when the case closes meanwhile.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                summary=label,
            )
        except ActivityError as err:
            # After a close-out no message's failure is the case's: a try that was refused
            # (429, 5xx) just as the close-out cancelled it ends as a failure, not a
            # cancellation, and used to fail the whole case. Its row is finished at close-out.
            if isinstance(err.cause, CancelledError) or self._status.closing is not None:
                raise asyncio.CancelledError() from None
            raise
        self._status.attempts.append(attempt)
        self._learn(role, address, attempt)
        self._render_details()
        self._stop_if_closing()
        return attempt

    def _learn(self, role: RecipientRole, address: str, attempt: Attempt) -> None:
        """An opted-out or invalid number (or a bad email) is never used again in this case."""
        if attempt.result in _UNUSABLE_RESULTS and address not in self._status.unusable:
            self._status.unusable.append(address)
            kind = "email address" if address.endswith("email") else "phone number"
            self._append_note(
                "system",
                f"The {_ROLE_LABEL[role]}'s {kind} is not used again in this case "
                f"({attempt.result.value}).",
            )

    async def _notify_staff(
        self,
        role: RecipientRole,
        purpose: Purpose,
        step_suffix: str,
        waited: timedelta | None = None,
        situation: StaffSituation | None = None,
        channels: list[Channel] | None = None,
    ) -> None:
        context = self._ctx()
        reach = {
            RecipientRole.therapist: context.therapist,
            RecipientRole.supervisor: context.supervisor,
            RecipientRole.on_call: context.on_call,
        }[role]
        if reach is None:
            return
        await self._send_step(
            [c for c in channels or self._policy.therapist_channels if c in reach.channels],
            role,
            purpose,
            step=f"{role.value}/{step_suffix}",
            reach=reach,
            waited=waited,
            situation=situation,
        )

    async def _within(self, limit: timedelta, condition: Callable[[], bool], why: str) -> bool:
        """True if `condition` became true within `limit` (a durable timer), else False.
        A close-out meanwhile ends the procedure (CancelledError)."""
        self._stop_if_closing()
        if condition():
            return True
        if limit > timedelta(0):
            try:
                await workflow.wait_condition(
                    lambda: condition() or self._status.closing is not None,
                    timeout=min(limit, LONGEST_TIMER),
                    timeout_summary=why,
                )
            except TimeoutError:
                return False
        self._stop_if_closing()
        return condition()

    def _outreach_over(self) -> bool:
        """The client answered, or the session was cancelled: no more outreach about them."""
        return self._status.client_responded or self._session_cancelled()

    def _session_cancelled(self) -> bool:
        return self._status.session_cancelled_at is not None

    def _stop_if_closing(self) -> None:
        if self._status.closing is not None:
            raise asyncio.CancelledError()

    async def _enter(self, stage: Stage, level: int) -> None:
        self._status.stage, self._status.stage_since = stage, workflow.now()
        self._status.escalation_level = max(self._status.escalation_level, level)
        self._upsert_search_attributes()
        self._render_details()
        workflow.logger.info("case entered stage %s", stage.value)
        await self._flush_notes()
        await self._store(
            CaseRecordActivities.record_stage,
            StageChange(case_id=self._status.case_id, stage=stage, at=workflow.now()),
            f"Record stage {stage.value}",
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
            await self._store(
                CaseRecordActivities.record_note,
                NoteRecord(
                    case_id=self._status.case_id,
                    key=f"{self._status.case_id}/note/{index + 1}",
                    entry=self._status.notes[index],
                ),
                "Record a case note",
            )

    async def _store(
        self,
        method: Callable[[CaseRecordActivities, _Arg], Awaitable[_Result]],
        arg: _Arg,
        summary: str,
    ) -> _Result:
        """A write to the case store (idempotent, quick). Cases opened since LEAN_HISTORY run
        it as a local activity: one marker event in the history instead of three activity
        events and a workflow task, which keeps the longest normal path under 200 events."""
        try:
            if workflow.patched(LEAN_HISTORY):
                return await workflow.execute_local_activity_method(
                    method,
                    arg,
                    start_to_close_timeout=STORE_TIMEOUT,
                    retry_policy=STORE_RETRY,
                    summary=summary,
                )
            return await workflow.execute_activity_method(
                method,
                arg,
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=STORE_RETRY,
                summary=summary,
            )
        except ActivityError as err:
            # A close-out cancelled the procedure during a write: that is a cancellation, not a
            # failure of the case (the close-out writes everything again, idempotently).
            if isinstance(err.cause, CancelledError):
                raise asyncio.CancelledError() from None
            raise

    def _header(self) -> CaseHeader:
        case = self._case
        return CaseHeader(
            case_id=self._status.case_id,
            appointment_id=case.appointment_id,
            client_id=case.client_id,
            therapist_id=case.therapist_id,
            scheduled_start=case.scheduled_start,
            policy_name=self._policy.name,
            opened_at=self._opened_at,
        )

    def _carry(self) -> MissedSessionInput:
        assert self._context is not None and self._wait is not None
        carried = CarriedState(
            opened_at=self._opened_at,
            status=self._status,
            context=self._context,
            notes_recorded=self._notes_recorded,
            wait=self._wait,
            runs=self._runs,
        )
        return self._case.model_copy(update={"carried": carried})

    def _in(self, duration: timedelta) -> datetime:
        return workflow.now() + duration

    # ------------------------------------------------------------------ visibility (no PHI)
    def _next(self, description: str, at: datetime | None = None) -> None:
        self._status.next_action = NextAction(description=description, at=at)
        self._render_details()

    def _render_details(self) -> None:
        """The Web UI's current details: every time in UTC and labelled so, every wait with its
        end. No names, numbers or notes."""
        status = self._status
        dry_runs = sum(1 for a in status.attempts if a.dry_run)
        lines = [
            f"**Stage:** {status.stage.value} since {_utc(status.stage_since)}",
            f"**Escalation level:** {status.escalation_level}",
        ]
        if status.closing is not None:
            c = status.closing
            lines.append(f"**Closing:** {c.outcome.value} by {c.by} at {_utc(c.at)}")
        if status.next_action is not None:
            action = status.next_action
            lines.append(
                f"**Next:** {action.description}" + (f", at {_utc(action.at)}" if action.at else "")
            )
        lines += [f"**Deferred:** {d.description} until {_utc(d.at)}" for d in status.deferred]
        if status.acknowledged_until is not None:
            lines.append(
                f"**Acknowledged:** reminders paused until {_utc(status.acknowledged_until)}"
            )
        lines.append(
            f"**Attempts so far:** {len(status.attempts)}"
            + (f" ({dry_runs} DRY RUN: nothing sent)" if dry_runs else "")
        )
        if status.rejected_signals:
            lines.append(f"**Rejected signals:** {len(status.rejected_signals)}")
        if self._runs > 1:
            lines.append(f"**Run:** {self._runs} (continued as new to keep history small)")
        workflow.set_current_details("\n\n".join(lines))

    def _upsert_search_attributes(self, outcome: CaseOutcome | None = None) -> None:
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.OUTREACH_STAGE.value_set(self._status.stage.value),
            sa.STAGE_SINCE.value_set(self._status.stage_since),
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


async def _stop(procedure: asyncio.Task[None]) -> None:
    """Cancel the procedure and wait until in-flight messages are recorded."""
    procedure.cancel()
    try:
        await procedure
    except asyncio.CancelledError:
        pass


def _decode(model: type[AnswerModel], answer: RawValue) -> AnswerModel:
    """The handler's lenient decode (the validator already checked the limits)."""
    return model.model_validate(workflow.payload_converter().from_payload(answer.payload))


def _validated(model: type[AnswerModel], answer: RawValue) -> AnswerModel:
    """Decode and check an answer at the edge; reject it in the product's words."""
    try:
        data = workflow.payload_converter().from_payload(answer.payload)
    except Exception:  # an unknown encoding or broken JSON from a hand-made request
        raise ApplicationError(
            "the answer could not be read: send one JSON object", type="InvalidAnswer"
        ) from None
    try:
        return at_edge(model, data)
    except EdgeError as exc:
        raise ApplicationError(str(exc), type="InvalidAnswer", non_retryable=True) from None


def _address(role: RecipientRole, channel: Channel) -> str:
    """Which of a recipient's addresses a channel uses, as `unusable` records it."""
    return f"{role.value}/{'email' if channel is Channel.email else 'phone'}"


def _label(channel: Channel, role: RecipientRole, round_number: int | None) -> str:
    return f"{_CHANNEL_LABEL[channel]} to {_ROLE_LABEL[role]}" + (
        f", round {round_number}" if round_number else ""
    )


def _labels(channels: list[Channel], role: RecipientRole, round_number: int | None) -> str:
    """The Web UI's summary of a batch, e.g. "Call, SMS, Email to client, round 1"."""
    names = ", ".join(_CHANNEL_LABEL[c] for c in channels)
    return f"{names} to {_ROLE_LABEL[role]}" + (f", round {round_number}" if round_number else "")


def _tail(answer: Any) -> str:
    note = getattr(answer, "note", "")
    return f" {note}" if note else ""


def _utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"
