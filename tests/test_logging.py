"""Worker logs name the case and the step on every line, in text or JSON, and an expected
provider refusal is one line, not a traceback."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from store.case_store import CaseStore
from temporal_env.logging_setup import configure_logging
from tests.harness import REACHED, harness

Capture = Callable[[bool], io.StringIO]


@pytest.fixture
def captured() -> Iterator[Capture]:
    def capture(json_format: bool) -> io.StringIO:
        handler = configure_logging(json_format=json_format)
        assert isinstance(handler, logging.StreamHandler)
        stream = io.StringIO()
        handler.setStream(stream)
        return stream

    yield capture
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_outreach", False):
            root.removeHandler(handler)


async def test_a_line_logged_in_an_activity_names_its_case_and_step(captured: Capture) -> None:
    stream = captured(True)

    async def work() -> None:
        logging.getLogger("outreach").info("attempt recorded")
        logging.getLogger("outreach").info("explicit", extra={"step": "client/1/sms"})

    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, workflow_id="missed-session-A1", activity_type="send_sms"
    )
    await env.run(work)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["case_id"], first["step"], first["message"]) == (
        "missed-session-A1",
        "send_sms",
        "attempt recorded",
    )
    assert (second["case_id"], second["step"]) == ("missed-session-A1", "client/1/sms")


def test_text_lines_carry_case_and_step_and_exceptions_stay_on_one_json_line(
    captured: Capture,
) -> None:
    stream = captured(False)
    logging.getLogger("worker").info("started", extra={"case_id": "missed-session-A1"})
    assert "[case=missed-session-A1 step=-] started" in stream.getvalue()
    stream = captured(True)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("worker").exception("failed")
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["error"] == "ValueError: boom"


async def test_an_expected_429_is_one_warning_line_without_a_traceback(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: CaseStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with harness(time_skipping_env, sqlite_store) as h:
        h.providers.transient_failures["sms"] = 1
        handle = await h.start(client_id="C3")
        await h.awaiting_close_out(handle)
        await h.answer(handle, "client_reached", **REACHED.model_dump(mode="json"))
        await handle.result()

    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    refusals = [r for r in loud if "provider refused" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].exc_info is None
    assert getattr(refusals[0], "case_id", None) == handle.id
    assert getattr(refusals[0], "step", None) == "client/1/sms"
    assert not [r for r in loud if r.exc_info]  # no traceback for an expected refusal
