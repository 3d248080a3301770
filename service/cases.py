"""The case service: the one way to open, answer, close out, annotate, inspect and list cases.

The command line, the demo (and later the web pages and the calendar sweep) call this module;
none of them starts or answers a workflow on its own. Every input is checked here at the edge
(`models.edge.at_edge`), then again by the workflow's Update validators; every problem comes
back as a `CaseError`: one line in the product's words.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models.answers import (
    Acknowledged,
    AddNote,
    AnswerReceipt,
    ClientArrived,
    ClientReached,
    ClientResponded,
    SessionCancelled,
)
from models.case import CaseStatus, MissedSessionInput, NoteEntry, Resolution, case_id_for
from models.edge import ID_RULE, EdgeError, at_edge, check_ids, is_id
from models.policy import EscalationPolicy, PolicyError, validate_policy
from models.report import local_label
from settings import Settings
from store.case_store import CaseStore
from store.rows import CaseRow
from temporal_env.connect import connect, connect_config
from temporal_env.search_attributes import missing_search_attributes
from workflows.missed_session import MissedSessionWorkflow

ANSWERS: dict[str, type[BaseModel]] = {
    "client_reached": ClientReached,
    "client_arrived": ClientArrived,
    "client_responded": ClientResponded,
    "acknowledged": Acknowledged,
    "add_note": AddNote,
    "session_cancelled": SessionCancelled,
}
"""Update name -> the model its payload must satisfy."""

_RUNNING = (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW)
CASE_PREFIX = case_id_for("")


class CaseError(Exception):
    """A problem with a request, in the product's words (printed as one line)."""


@dataclass(frozen=True)
class OpenedCase:
    case_id: str
    new: bool


@dataclass(frozen=True)
class CaseListing:
    cases: list[CaseRow]
    reconciled: bool  # False when Temporal could not be asked


def case_id_of(reference: str) -> str:
    """CASE arguments accept the appointment id or the case id. Checked before it is looked up
    anywhere: an id no case can have (too long for the store, a NUL, not UTF-8) is refused."""
    appointment_id = reference.removeprefix(CASE_PREFIX)
    if not is_id(appointment_id):
        raise CaseError(
            f"case: the appointment id or the case id ({CASE_PREFIX}<appointment>); an "
            f"appointment id {ID_RULE}"
        )
    return case_id_for(appointment_id)


class CaseService:
    # How long an answer keeps trying while Temporal cannot take it yet (see `_deliver_answer`).
    answer_retry_for = timedelta(seconds=30)

    def __init__(self, store: CaseStore, settings: Settings, client: Client | None = None) -> None:
        self._store = store
        self._settings = settings
        self._client = client
        self._search_attributes_found = False  # see `_check_search_attributes`

    @property
    def store(self) -> CaseStore:
        return self._store

    # ------------------------------------------------------------------ Temporal
    async def temporal(self) -> Client:
        """The Temporal client, connected on first use (listing works without a server)."""
        if self._client is None:
            address = connect_config().get("target_host")
            try:
                self._client = await connect()
            except RuntimeError:
                raise CaseError(
                    f"no Temporal server reachable at {address}: start one (make demo, or "
                    "temporal server start-dev) or set TEMPORAL_ADDRESS"
                ) from None
        return self._client

    def ui_link(self, namespace: str, case_id: str) -> str:
        return f"{self._settings.temporal_ui_url}/namespaces/{namespace}/workflows/{case_id}"

    # ------------------------------------------------------------------ open
    async def open(
        self,
        *,
        appointment_id: str,
        client_id: str,
        scheduled_start: datetime,
        policy: EscalationPolicy,
        therapist_id: str | None = None,
        now: datetime | None = None,
    ) -> OpenedCase:
        """Open the case for a missed session, once per appointment, ever. The therapist
        defaults to the client's own; anyone else is refused."""
        try:  # before any lookup: an id the store cannot hold is a clear error, not its error
            check_ids(appointment_id=appointment_id, client_id=client_id, therapist_id=therapist_id)
        except EdgeError as exc:
            raise CaseError(str(exc)) from None
        client = await self._store.get_client(client_id)
        if client is None:
            raise CaseError(f"unknown client id {client_id!r}: import the directory first")
        own = client.therapist_id
        if therapist_id is None:
            if own is None:
                raise CaseError(f"client {client_id} has no therapist on file: give --therapist")
            therapist_id = own
        elif own is not None and therapist_id != own:
            raise CaseError(f"therapist {therapist_id} is not the therapist of client {client_id}")
        if await self._store.get_therapist(therapist_id) is None:
            raise CaseError(f"unknown therapist id {therapist_id!r}: import the directory first")
        try:  # a policy object from code gets the same checks as a policy file
            policy = validate_policy(policy.model_dump(mode="json"), f"'{policy.name}'")
        except PolicyError as exc:
            raise CaseError(str(exc)) from None
        try:
            case = at_edge(
                MissedSessionInput,
                {
                    "appointment_id": appointment_id,
                    "client_id": client_id,
                    "therapist_id": therapist_id,
                    "scheduled_start": scheduled_start,
                    "policy": policy,
                },
            )
        except EdgeError as exc:
            raise CaseError(str(exc)) from None
        window = timedelta(days=policy.trigger_window_days)
        now = now or datetime.now(UTC)
        if abs(case.scheduled_start - now) > window:
            raise CaseError(
                f"the session starts more than {policy.trigger_window_days} days from now "
                f"({case.scheduled_start.isoformat()}); the policy opens cases only within that"
            )
        temporal = await self.temporal()
        await self._check_search_attributes(temporal)
        try:
            await temporal.start_workflow(
                MissedSessionWorkflow.run,
                case,
                id=case.case_id,
                task_queue=self._settings.temporal_task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"Missed session, appointment {case.appointment_id}",
                static_details=(
                    f"Therapist {case.therapist_id}; policy {case.policy.name}; "
                    f"scheduled {case.scheduled_start.astimezone(UTC).isoformat()}"
                ),
            )
        except WorkflowAlreadyStartedError:
            return OpenedCase(case.case_id, new=False)
        return OpenedCase(case.case_id, new=True)

    async def _check_search_attributes(self, temporal: Client) -> None:
        """Refuse to open a case on a namespace without our search attributes: its first
        workflow task would fail and wait there. Asked until they are found, then trusted (they
        are not removed in normal operation): the listing is an operator call, and the dev
        server kept a connection to itself open for each one, so a worker whose calendar sweep
        had opened about 10,000 cases ran the server out of file descriptors
        (`python -m bench.held_cases --cases 10000`)."""
        if self._search_attributes_found:
            return
        missing = await missing_search_attributes(temporal)
        if missing:
            raise CaseError(
                f"search attributes {', '.join(missing)} are not registered on this Temporal "
                "namespace: run `starter.py setup` first"
            )
        self._search_attributes_found = True

    # ------------------------------------------------------------------ answer
    async def answer(self, reference: str, update: str, data: Mapping[str, Any]) -> str:
        """Send one answer (an Update) and return what the case said it will do next."""
        model = ANSWERS.get(update)
        if model is None:
            raise CaseError(f"unknown answer {update!r}: one of {', '.join(ANSWERS)}")
        try:
            payload = at_edge(model, data).model_dump(mode="json")
        except EdgeError as exc:
            raise CaseError(str(exc)) from None
        case_id = case_id_of(reference)
        handle = (await self.temporal()).get_workflow_handle(case_id)
        try:
            receipt = await self._deliver_answer(handle, update, payload)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise CaseError(f"case {case_id}: {message}") from None
        except RPCError as exc:
            raise await self._not_running(case_id, exc) from None
        return f"{case_id}: {receipt.accepted}"

    async def _deliver_answer(
        self, handle: WorkflowHandle[Any, Any], update: str, payload: dict[str, Any]
    ) -> AnswerReceipt:
        """The Update, retried for `answer_retry_for` while Temporal cannot take it yet: the
        server turns Updates away (FAILED_PRECONDITION) while the case's workflow task is
        failing, which a worker too busy to finish a task in its 10 s also causes, and the
        call gives up on an Update no worker has taken in time. Every try carries the same
        update id, so an answer the server did take is applied once, never twice."""
        update_id = f"{update}-{uuid.uuid4().hex}"
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.answer_retry_for.total_seconds()
        pause = 0.5
        while True:
            try:
                receipt: AnswerReceipt = await handle.execute_update(
                    update, payload, id=update_id, result_type=AnswerReceipt
                )
                return receipt
            except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
                if isinstance(exc.__cause__, asyncio.CancelledError):
                    raise exc.__cause__ from None  # the caller gave up: not a retry
                if loop.time() >= give_up_at:
                    raise CaseError(
                        f"case {handle.id} did not take the answer in time: no worker is "
                        "free to run it (busy or down); try again, it will not be applied twice"
                    ) from None
            except RPCError as exc:
                if exc.status is not RPCStatusCode.FAILED_PRECONDITION or (
                    loop.time() >= give_up_at
                ):
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 4.0)

    async def close_out(self, reference: str, data: Mapping[str, Any]) -> str:
        """The therapist's close-out: ends the case at any stage. A close-out whose answer was
        lost (the case finished before the reply came back, a retried request) and that the
        resolution shows as this very close-out is a success, not "already closed"."""
        try:
            return await self.answer(reference, "client_reached", data)
        except CaseError:
            case_id = case_id_of(reference)
            resolution = await self._store.get_resolution(case_id)
            mine = (
                resolution is not None
                and isinstance(data, Mapping)  # not a close-out at all: its own error stands
                and resolution.outcome.value == data.get("outcome")
                and resolution.closed_by == data.get("by", "therapist")
                and resolution.note == data.get("note")
            )
            if not mine:
                raise
            assert resolution is not None
            return f"{case_id}: closed as {resolution.outcome.value}"

    async def note(self, reference: str, data: Mapping[str, Any]) -> str:
        """Documentation at any stage; on a closed case, a dated addendum to its resolution
        (late documentation is normal clinical practice)."""
        case_id = case_id_of(reference)
        resolution = await self._store.get_resolution(case_id)
        if resolution is None:
            try:
                return await self.answer(reference, "add_note", data)
            except CaseError:
                resolution = await self._store.get_resolution(case_id)
                if resolution is None:
                    raise
        try:
            note = at_edge(AddNote, data)
        except EdgeError as exc:
            raise CaseError(str(exc)) from None
        entry = NoteEntry(at=datetime.now(UTC), author=note.author, text=note.text)
        await self._store.add_addendum(case_id, entry)
        return f"{case_id}: case is closed; note added as a dated addendum to its resolution"

    async def _not_running(self, case_id: str, exc: RPCError) -> CaseError:
        resolution = await self._store.get_resolution(case_id)
        if resolution is not None:
            return CaseError(f"case {case_id}: {self.closed_line(resolution)}")
        if exc.status is RPCStatusCode.NOT_FOUND:
            if await self._store.get_case(case_id) is not None:
                return CaseError(f"case {case_id} is no longer running in Temporal")
            return CaseError(f"no such case: {case_id}")
        if exc.status is RPCStatusCode.FAILED_PRECONDITION:
            return CaseError(
                f"case {case_id} cannot be reached now: Temporal is retrying its workflow task "
                "(a busy worker, or a fault shown on the case in the Web UI); try again shortly"
            )
        return CaseError(f"case {case_id}: {exc.message}")

    def closed_line(self, resolution: Resolution) -> str:
        when = local_label(resolution.closed_at, self._settings.practice_time_zone)
        return (
            f"case is already closed: {resolution.outcome.value} by {resolution.closed_by} "
            f"at {when}"
        )

    # ------------------------------------------------------------------ inspect
    async def status(self, reference: str) -> Resolution | CaseStatus:
        """The documented resolution of a closed case, or the live status of an open one."""
        case_id = case_id_of(reference)
        resolution = await self._store.get_resolution(case_id)
        if resolution is not None:
            return resolution
        handle = (await self.temporal()).get_workflow_handle(case_id)
        try:
            return await handle.query(MissedSessionWorkflow.case_status)
        except RPCError as exc:
            raise await self._not_running(case_id, exc) from None

    async def list_cases(self, open_only: bool = True) -> CaseListing:
        """Cases from the store, reconciled with Temporal first: a case ended by hand in the
        Web UI (terminated: no code ran) is marked, not left "open" forever."""
        reconciled = await self.reconcile()
        return CaseListing(await self._store.list_cases(open_only=open_only), reconciled)

    async def stuck(self, older_than: timedelta, now: datetime | None = None) -> CaseListing:
        listing = await self.list_cases(open_only=True)
        now = now or datetime.now(UTC)
        stuck = [c for c in listing.cases if now - c.stage_since >= older_than]
        return CaseListing(stuck, listing.reconciled)

    async def reconcile(self) -> bool:
        """Mark open store cases whose workflow is no longer running. False if Temporal could
        not be reached (the listing then comes from the store alone)."""
        open_cases = await self._store.list_cases(open_only=True)
        if not open_cases:
            return True
        try:
            temporal = await self.temporal()
        except CaseError:
            return False
        for case in open_cases:
            handle = temporal.get_workflow_handle(case.case_id)
            try:
                description = await handle.describe()
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:
                    return False
                await self._store.mark_ended_outside(case.case_id, "NOT_FOUND", datetime.now(UTC))
                continue
            status = description.status
            if status is None or status in _RUNNING:
                continue
            if await self._store.get_resolution(case.case_id) is not None:
                continue
            ended = description.close_time or datetime.now(UTC)
            await self._store.mark_ended_outside(case.case_id, status.name, ended)
        return True
