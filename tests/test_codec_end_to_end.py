"""Encrypted history end to end: a case on the real dev server with a sealed client; the
`temporal` CLI (what the Web UI does, through the same remote codec protocol) reads its notes
only through our codec server, with its token."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from pydantic import SecretStr
from temporalio.client import Client

from service.cases import CaseService
from settings import Settings
from store.case_store import CaseStore
from temporal_env.binaries import find_binary
from temporal_env.codec import data_converter
from temporal_env.dev_server import start_dev_server
from tests import directory_data
from tests.fakes import RecordingProviders
from tests.harness import NO_QUIET_HOURS, REACHED
from tests.payloads import readable
from web.app import create_app
from worker import build_worker

TOKEN = "codec-token-0123456789"


def readable_or_empty(output: str) -> bytes:
    try:
        return readable(json.loads(output))
    except json.JSONDecodeError:  # the CLI refused: an error line, no history
        return b""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _show(address: str, case_id: str, *codec: str) -> str:
    process = await asyncio.create_subprocess_exec(
        find_binary("temporal"),
        *("workflow", "show", "--workflow-id", case_id, "--address", address, "-o", "json"),
        *codec,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return output.decode()


async def test_the_cli_reads_a_sealed_case_only_through_the_codec_server(tmp_path: Path) -> None:
    keys = f"k1={base64.b64encode(os.urandom(32)).decode()}"
    settings = Settings(
        payload_keys=SecretStr(keys),
        codec_server_token=SecretStr(TOKEN),
        temporal_task_queue=f"codec-{uuid.uuid4().hex[:8]}",
        call_poll_interval_seconds=0.01,
    )
    env = await start_dev_server(tmp_path / "temporal", port=None, ui_port=None)
    config = env.client.config()
    config["data_converter"] = data_converter(keys)
    sealed = Client(**config)
    store = CaseStore.from_url(f"sqlite+aiosqlite:///{tmp_path}/cases.db")
    await store.create_schema()
    await store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    address = env.client.service_client.config.target_host
    try:
        async with build_worker(sealed, settings, store, RecordingProviders().bundle()):
            cases = CaseService(store, settings, sealed)
            opened = await cases.open(
                appointment_id=f"codec-{uuid.uuid4().hex[:6]}",
                client_id="C1",
                scheduled_start=datetime.now(UTC),
                policy=NO_QUIET_HOURS,
            )
            await cases.close_out(opened.case_id, REACHED.model_dump(mode="json"))
            await sealed.get_workflow_handle(opened.case_id).result()
        for _ in range(100):  # uvicorn has started by now; bounded all the same
            if server.started:
                break
            await asyncio.sleep(0.05)
        endpoint = f"http://127.0.0.1:{port}/codec"
        plain = await _show(address, opened.case_id)
        decoded = await _show(
            address, opened.case_id, "--codec-endpoint", endpoint, "--codec-auth", f"Bearer {TOKEN}"
        )
        refused = await _show(
            address, opened.case_id, "--codec-endpoint", endpoint, "--codec-auth", "Bearer nope"
        )
    finally:
        server.should_exit = True
        await serving
        await store.close()
        await env.shutdown()

    note = REACHED.note.encode()
    assert note not in readable(json.loads(plain))
    assert base64.b64encode(b"binary/encrypted").decode() in plain  # sealed, as stored
    assert note in readable(json.loads(decoded))
    assert note not in refused.encode() and note not in readable_or_empty(refused)
