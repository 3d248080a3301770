"""An answer Temporal cannot take yet is retried, under one update id, for a bounded time.

Under load a worker can take longer than a workflow task's 10 s; the server then retries the
task and turns Updates away (FAILED_PRECONDITION, "Workflow Task in failed state") until one
succeeds, and an Update no worker has picked up makes the call give up. The benchmark's
PostgreSQL run lost close-outs to both. Here the Temporal handle is a stand-in that answers as
the server did, so each answer's tries, ids and final error are seen exactly.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from models.answers import AnswerReceipt
from service.cases import CaseError, CaseService
from settings import Settings
from store.case_store import CaseStore
from tests.harness import REACHED

CASE = "missed-session-A1"
FAILING_TASK = RPCError(
    "Unable to perform workflow execution update due to Workflow Task in failed state.",
    RPCStatusCode.FAILED_PRECONDITION,
    b"",
)
CLOSE_OUT = REACHED.model_dump(mode="json")
NOTE = {"author": "front desk", "text": "Client's mother called."}


class ScriptedHandle:
    """Answers each execute_update with the next item of its script (an error to raise, or
    the receipt), and keeps the update id of every call."""

    def __init__(self, script: list[BaseException | AnswerReceipt]) -> None:
        self.id = CASE
        self.script = script
        self.update_ids: list[str] = []

    async def execute_update(self, update: str, payload: Any, **options: Any) -> AnswerReceipt:
        self.update_ids.append(options["id"])
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        return step


class ScriptedClient:
    def __init__(self, handle: ScriptedHandle) -> None:
        self.handle = handle

    def get_workflow_handle(self, workflow_id: str) -> ScriptedHandle:
        assert workflow_id == CASE
        return self.handle


def service(store: CaseStore, handle: ScriptedHandle, retry_for: float) -> CaseService:
    cases = CaseService(store, Settings(database_url="unused"), ScriptedClient(handle))  # type: ignore[arg-type]
    cases.answer_retry_for = timedelta(seconds=retry_for)
    return cases


async def test_a_close_out_waits_out_a_failing_workflow_task_under_one_update_id(
    sqlite_store: CaseStore,
) -> None:
    receipt = AnswerReceipt(case_id=CASE, accepted="closing the case as reached_safe")
    handle = ScriptedHandle([FAILING_TASK, FAILING_TASK, receipt])
    said = await service(sqlite_store, handle, retry_for=30).close_out(CASE, CLOSE_OUT)
    assert said == f"{CASE}: closing the case as reached_safe"
    assert len(handle.update_ids) == 3
    assert len(set(handle.update_ids)) == 1  # the server dedupes: applied once at most
    assert handle.update_ids[0].startswith("client_reached-")


async def test_a_task_that_keeps_failing_gives_a_clear_error_once_the_retry_time_is_up(
    sqlite_store: CaseStore,
) -> None:
    handle = ScriptedHandle([FAILING_TASK])
    with pytest.raises(CaseError) as raised:
        await service(sqlite_store, handle, retry_for=0.6).close_out(CASE, CLOSE_OUT)
    assert str(raised.value) == (
        f"case {CASE} cannot be reached now: Temporal is retrying its workflow task (a busy "
        "worker, or a fault shown on the case in the Web UI); try again shortly"
    )
    assert len(handle.update_ids) == 3  # at 0, 0.5 and 1.5 s: tried until past 0.6 s


async def test_an_update_no_worker_takes_in_time_says_so_and_is_safe_to_repeat(
    sqlite_store: CaseStore,
) -> None:
    handle = ScriptedHandle([WorkflowUpdateRPCTimeoutOrCancelledError()])
    with pytest.raises(CaseError) as raised:
        await service(sqlite_store, handle, retry_for=0).close_out(CASE, CLOSE_OUT)
    assert str(raised.value) == (
        f"case {CASE} did not take the answer in time: no worker is free to run it (busy or "
        "down); try again, it will not be applied twice"
    )
    assert len(handle.update_ids) == 1


async def test_a_case_that_does_not_exist_is_not_retried(sqlite_store: CaseStore) -> None:
    handle = ScriptedHandle([RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")])
    with pytest.raises(CaseError, match=f"no such case: {CASE}"):
        await service(sqlite_store, handle, retry_for=30).close_out(CASE, CLOSE_OUT)
    assert len(handle.update_ids) == 1


async def test_an_answer_whose_caller_gave_up_is_not_retried(sqlite_store: CaseStore) -> None:
    """The SDK reports the caller's own cancellation as the same error as a timeout; it must
    end the answer at once (a closed web request, a stopping CLI), not try for 30 s more."""
    cancelled = WorkflowUpdateRPCTimeoutOrCancelledError()
    cancelled.__cause__ = asyncio.CancelledError()
    handle = ScriptedHandle([cancelled])
    with pytest.raises(asyncio.CancelledError):
        await service(sqlite_store, handle, retry_for=30).answer(CASE, "add_note", NOTE)
    assert len(handle.update_ids) == 1
