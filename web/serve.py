"""Running the web app in-process (the demo, the browser test) and keeping link tokens out of
the access log: a token is not PHI, but it opens a case's page until it expires."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

_TOKEN = re.compile(r"^(/case/|/r/)[^/?\s]+")


class RedactTokens(logging.Filter):
    """uvicorn's access log line with `/case/<token>` shown as `/case/…`."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], _TOKEN.sub(r"\1…", args[2]), *args[3:])
        return True


def redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())


def free_port(host: str, preferred: int | None = None) -> int:
    """`preferred` if nothing listens there, else any free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError(f"no free port on {host}")


@asynccontextmanager
async def serving(app: FastAPI, host: str, port: int) -> AsyncIterator[uvicorn.Server]:
    """uvicorn on this event loop until the block ends."""
    redact_access_log()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        if not server.started:
            if task.done():
                task.result()  # e.g. the port is taken: the error, not a hang
            raise RuntimeError(f"the web service did not start on {host}:{port}")
        yield server
    finally:
        server.should_exit = True
        await task
