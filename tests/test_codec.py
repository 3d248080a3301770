"""Encrypted history: what Temporal stores is sealed with AES-GCM, keys rotate, and histories
from before the codec still replay."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from store.case_store import CaseStore
from temporal_env.codec import (
    ENCODING,
    EncryptionCodec,
    PayloadKeyError,
    data_converter,
    parse_keys,
)
from tests import directory_data
from tests.harness import REACHED, Harness
from tests.payloads import payloads
from workflows.missed_session import MissedSessionWorkflow

HISTORIES = Path(__file__).parent / "histories"


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


async def test_payloads_are_sealed_and_keys_rotate() -> None:
    old, new = _key(), _key()
    before = EncryptionCodec(parse_keys(f"k1={old}"))
    after = EncryptionCodec(parse_keys(f"k2={new},k1={old}"))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"note": "Spoke with Alex"}')

    [sealed_by_k1] = await before.encode([plain])
    [sealed_by_k2] = await after.encode([plain])
    assert sealed_by_k1.metadata["encoding"] == ENCODING and b"Alex" not in sealed_by_k1.data
    assert sealed_by_k2.metadata["encryption-key-id"] == b"k2"
    assert await after.decode([sealed_by_k1, sealed_by_k2]) == [plain, plain]  # old key opens
    assert await after.decode([plain]) == [plain]  # from before the codec: passed through
    with pytest.raises(PayloadKeyError, match="key 'k2', not in PAYLOAD_KEYS"):
        await before.decode([sealed_by_k2])
    tampered = Payload(
        metadata=sealed_by_k1.metadata,
        data=sealed_by_k1.data[:-1] + bytes([sealed_by_k1.data[-1] ^ 1]),
    )
    with pytest.raises(PayloadKeyError, match="does not open"):
        await before.decode([tampered])


@pytest.mark.parametrize("keys", ["", "k1", "k1=short", f"={base64.b64encode(b'x' * 32).decode()}"])
def test_malformed_keys_are_refused_without_echoing_them(keys: str) -> None:
    with pytest.raises(PayloadKeyError) as refused:
        parse_keys(keys)
    assert "short" not in str(refused.value)


async def test_a_case_on_a_sealed_client_leaves_no_note_readable_in_history(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    config = time_skipping_env.client.config()
    config["data_converter"] = data_converter(f"k1={_key()}")
    sealed = Client(**config)
    await sqlite_store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    h = Harness(time_skipping_env, sqlite_store, own_client=sealed)
    async with h.worker():
        handle = await h.start()
        resolution = await h.close_as_therapist(handle)
    raw = await time_skipping_env.client.get_workflow_handle(handle.id).fetch_history()

    assert resolution.note == REACHED.note  # the sealed client reads it
    stored = list(payloads(raw.to_json_dict()))
    assert len(stored) > 20  # inputs, results, answers, summaries
    plain = []
    for metadata, data in stored:
        if "type" in metadata:
            continue  # a search attribute: indexed by the server, so never sealed (no PHI)
        for secret in (REACHED.note, REACHED.follow_up_plan, "reached_safe", "Round"):
            assert secret.encode() not in data
        if base64.b64decode(metadata["encoding"]) != ENCODING:
            plain.append(json.loads(data))
    # The SDK's own bookkeeping is written unsealed: which patch a case runs under, and each
    # local activity's sequence number, type and time (their inputs and results are sealed).
    assert plain, "a new case records its patch"
    for entry in plain:
        assert set(entry) <= {"id", "deprecated"} or "activity_type" in entry, entry


@pytest.mark.parametrize("name", ["full_case", "acknowledgement_v2", "session_moved_in_round"])
async def test_histories_from_before_the_codec_replay_with_it(name: str) -> None:
    path = HISTORIES / f"{name}.json"
    history = WorkflowHistory.from_json(name, path.read_text())
    replayer = Replayer(
        workflows=[MissedSessionWorkflow], data_converter=data_converter(f"k1={_key()}")
    )
    await replayer.replay_workflow(history)
    assert pydantic_data_converter.payload_codec is None  # the plain converter is untouched
