"""A fresh, empty case store for a benchmark: a SQLite file in its folder, or a PostgreSQL
database of its own on the local server (`TEST_POSTGRES_DSN`, as the tests use)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

POSTGRES_ADMIN = os.environ.get(
    "TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def scratch_store(kind: str, folder: Path) -> tuple[str, Callable[[], Awaitable[None]]]:
    """A fresh, empty case store's URL and how to throw it away."""
    if kind == "sqlite":

        async def nothing() -> None:
            pass

        return f"sqlite+aiosqlite:///{folder}/cases.db", nothing
    name = f"outreach_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")

    async def drop() -> None:
        admin = await asyncpg.connect(POSTGRES_ADMIN)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()

    return f"{base}/{name}", drop
