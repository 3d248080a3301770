"""The case store's schema changes only through its Alembic migrations (store/migrations), on
SQLite and on PostgreSQL: a store from before migrations keeps its cases, an empty one gets every
revision, and the migrated schema is exactly the models (a model change without a migration
fails here)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    inspect,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from models.answers import CaseOutcome
from models.case import (
    Attempt,
    AttemptResult,
    AttendanceReview,
    NoteEntry,
    Purpose,
    RecipientRole,
    Stage,
)
from models.directory import Channel
from store import CaseStore, migrations
from store.errors import StoreError
from store.schema import Base
from tests import directory_data

# ---------------------------------------------------------------------- frozen schemas
# The store as `Base.metadata.create_all` made it before migrations, copied from store/schema.py
# as it was then (the commit before "Calendar interface ..."). Frozen on purpose: never edit it
# to follow the models. UtcDateTime's DDL is DateTime(timezone=True).


def _utc(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


LEGACY = MetaData()
Table(
    "therapists",
    LEGACY,
    Column("therapist_id", String(64), primary_key=True),
    Column("record", JSON, nullable=False),
)
Table(
    "clients",
    LEGACY,
    Column("client_id", String(64), primary_key=True),
    Column("therapist_id", String(64), index=True),
    Column("record", JSON, nullable=False),
)
Table(
    "cases",
    LEGACY,
    Column("case_id", String(200), primary_key=True),
    Column("appointment_id", String(200), unique=True, nullable=False),
    Column("client_id", String(64), index=True, nullable=False),
    Column("therapist_id", String(64), index=True, nullable=False),
    _utc("scheduled_start"),
    Column("policy_name", String(100), nullable=False),
    Column("stage", String(40), nullable=False),
    _utc("stage_since"),
    _utc("opened_at"),
    _utc("closed_at", nullable=True),
    Column("outcome", String(60)),
)
Table(
    "attempts",
    LEGACY,
    Column("key", String(300), primary_key=True),
    Column("case_id", String(200), index=True, nullable=False),
    Column("step", String(100), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("recipient_role", String(30), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("round", Integer),
    Column("state", String(10), nullable=False),
    Column("claim", String(200)),
    Column("provider_id", String(100)),
    Column("result", String(30)),
    Column("detail", Text, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    _utc("started_at"),
    _utc("finished_at", nullable=True),
)
Table(
    "notes",
    LEGACY,
    Column("key", String(300), primary_key=True),
    Column("case_id", String(200), index=True, nullable=False),
    _utc("at"),
    Column("author", String(200), nullable=False),
    Column("text", Text, nullable=False),
)
Table(
    "attendance",
    LEGACY,
    Column("appointment_id", String(200), primary_key=True),
    Column("client_id", String(64), index=True, nullable=False),
    _utc("scheduled_start"),
    Column("status", String(20), nullable=False),
)
Table(
    "resolutions",
    LEGACY,
    Column("case_id", String(200), primary_key=True),
    _utc("recorded_at"),
    Column("document", JSON, nullable=False),
)

# For one commit, create_all also made the calendar tables, still without migrations.
LEGACY_WITH_CALENDAR = MetaData()
for legacy_table in LEGACY.tables.values():
    legacy_table.to_metadata(LEGACY_WITH_CALENDAR)
Table(
    "calendar_sources",
    LEGACY_WITH_CALENDAR,
    Column("source_id", String(64), primary_key=True),
    Column("config", JSON, nullable=False),
    Column("secret", Text),
    _utc("created_at"),
    _utc("last_read_at", nullable=True),
    _utc("swept_until", nullable=True),
    Column("last_error", Text),
    _utc("last_error_at", nullable=True),
    Column("last_summary", Text),
)
Table(
    "calendar_sessions",
    LEGACY_WITH_CALENDAR,
    Column("appointment_id", String(200), primary_key=True),
    Column("source_id", String(64), index=True, nullable=False),
    _utc("scheduled_start"),
    _utc("case_opened_at", nullable=True),
    Column("opened_late_seconds", Integer),
    _utc("arrival_reported_at", nullable=True),
    _utc("cancellation_reported_at", nullable=True),
    _utc("late_cancellation_at", nullable=True),
)

# ---------------------------------------------------------------------- a case, as plain rows
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # UTC, as UtcDateTime wrote every datetime
CLOSED = T0 + timedelta(hours=3)
CASE = "missed-session-A1"
ATTEMPT = Attempt(
    step="client/1/sms",
    channel=Channel.sms,
    recipient_role=RecipientRole.client,
    purpose=Purpose.client_outreach,
    round=1,
    at=T0 + timedelta(minutes=20),
    result=AttemptResult.sent,
    detail="",
    provider_id="SM1",
    dry_run=False,
)
NOTE = NoteEntry(at=T0 + timedelta(minutes=5), author="desk", text="front desk called")
RESOLUTION = directory_data.resolution(
    CASE,
    T0,
    CLOSED,
    outcome=CaseOutcome.reached_safe,
    note="Spoke with the client; safe.",
    follow_up_plan="Keep next week's session.",
    attendance=AttendanceReview(
        window_days=90, misses_in_window=1, threshold=2, missed_session_starts=[T0]
    ),
    attendance_flagged=False,
    attempts=[ATTEMPT],
    notes=[NOTE],
)


def _insert_case(conn: Connection) -> None:
    """One closed case as the old code wrote it, through plain SQL on the frozen tables."""
    tables = LEGACY.tables
    conn.execute(
        tables["cases"].insert(),
        {
            "case_id": CASE,
            "appointment_id": "A1",
            "client_id": "C1",
            "therapist_id": "T1",
            "scheduled_start": T0,
            "policy_name": "standard",
            "stage": Stage.closed.value,
            "stage_since": CLOSED,
            "opened_at": T0,
            "closed_at": CLOSED,
            "outcome": "reached_safe",
        },
    )
    conn.execute(
        tables["attempts"].insert(),
        {
            "key": f"{CASE}/client/1/sms",
            "case_id": CASE,
            "step": "client/1/sms",
            "channel": "sms",
            "recipient_role": "client",
            "purpose": "client_outreach",
            "round": 1,
            "state": "done",
            "claim": "try-1",
            "provider_id": "SM1",
            "result": "sent",
            "detail": "",
            "dry_run": False,
            "started_at": T0 + timedelta(minutes=19),
            "finished_at": ATTEMPT.at,
        },
    )
    conn.execute(
        tables["notes"].insert(),
        {
            "key": f"{CASE}/note/1",
            "case_id": CASE,
            "at": NOTE.at,
            "author": "desk",
            "text": NOTE.text,
        },
    )
    conn.execute(
        tables["resolutions"].insert(),
        {"case_id": CASE, "recorded_at": CLOSED, "document": RESOLUTION.model_dump(mode="json")},
    )


# ---------------------------------------------------------------------- helpers
@pytest.fixture
async def engine(empty_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database (SQLite, PostgreSQL); the store under test uses it too."""
    engine = create_async_engine(empty_database_url)
    yield engine
    await engine.dispose()


async def _pre_alembic_store(engine: AsyncEngine, metadata: MetaData = LEGACY) -> CaseStore:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.run_sync(_insert_case)
    return CaseStore(engine)


async def _differences(engine: AsyncEngine, metadata: MetaData) -> list[Any]:
    def compare(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    async with engine.connect() as conn:
        return await conn.run_sync(compare)


async def _revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


HEAD = ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()


async def _assert_case_intact(store: CaseStore) -> None:
    case = await store.get_case(CASE)
    assert case is not None
    assert (case.stage, case.opened_at, case.closed_at, case.outcome) == (
        Stage.closed,
        T0,
        CLOSED,
        "reached_safe",
    )
    assert await store.attempts_for_case(CASE) == [ATTEMPT]
    attempt = await store.get_attempt(f"{CASE}/client/1/sms")
    assert attempt is not None and attempt.claim == "try-1"
    assert await store.notes_for_case(CASE) == [NOTE]
    assert await store.get_resolution(CASE) == RESOLUTION


def _record_writes(engine: AsyncEngine) -> list[str]:
    """Every statement on `engine` from now on that could change the schema or a row."""
    writes: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in {"CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE", "TRUNCATE"}:
            writes.append(statement)

    return writes


# ---------------------------------------------------------------------- tests
def test_the_revisions_are_one_line_from_the_baseline() -> None:
    scripts = ScriptDirectory.from_config(migrations.alembic_config())
    chain = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert chain == [
        "0001_baseline",
        "0002_calendar",
        "0003_calendar_sweep_state",
        "0004_web_integrations",
    ]
    assert chain[-1] == HEAD and chain[0] == migrations.BASELINE


async def test_a_store_from_before_migrations_keeps_its_cases(engine: AsyncEngine) -> None:
    store = await _pre_alembic_store(engine)
    await _assert_case_intact(store)  # the old schema, read by today's code
    assert "alembic_version" not in await _tables(engine)

    await store.create_schema()
    await _assert_case_intact(store)
    assert {"calendar_sources", "calendar_sessions"} <= await _tables(engine)
    assert await _revision(engine) == HEAD
    assert await _differences(engine, Base.metadata) == []

    writes = _record_writes(engine)
    await store.create_schema()  # again: nothing to do
    assert writes == []
    assert await _revision(engine) == HEAD
    await _assert_case_intact(store)


async def test_a_store_from_before_migrations_with_calendar_tables(engine: AsyncEngine) -> None:
    """create_all made the calendar tables for one commit before they had a migration: such a
    store is taken as being at 0002 already (creating them again would fail)."""
    store = await _pre_alembic_store(engine, LEGACY_WITH_CALENDAR)
    await store.create_schema()
    await _assert_case_intact(store)
    assert await _revision(engine) == HEAD
    assert await _differences(engine, Base.metadata) == []


async def test_an_empty_database_gets_every_revision(engine: AsyncEngine) -> None:
    store = CaseStore(engine)
    await store.create_schema()
    assert await _revision(engine) == HEAD
    assert await _tables(engine) == set(Base.metadata.tables) | {"alembic_version"}
    writes = _record_writes(engine)
    await store.create_schema()
    assert writes == []


async def test_the_migrated_schema_is_exactly_the_models(engine: AsyncEngine) -> None:
    """A model changed without a migration (or a migration that differs) fails here: types,
    lengths, nullability, indexes and unique constraints are compared."""
    await CaseStore(engine).create_schema()
    assert await _differences(engine, Base.metadata) == []


async def test_the_baseline_is_exactly_the_schema_from_before_migrations(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(migrations.upgrade, migrations.BASELINE)
    assert await _revision(engine) == migrations.BASELINE
    assert await _differences(engine, LEGACY) == []


async def test_two_processes_upgrading_at_once_both_succeed(
    engine: AsyncEngine, empty_database_url: str
) -> None:
    """Several workers (or a worker and a command) starting together on a new store: one
    migrates, the other waits and finds the schema at head."""
    other = CaseStore.from_url(empty_database_url)
    try:
        await asyncio.gather(CaseStore(engine).create_schema(), other.create_schema())
    finally:
        await other.close()
    assert await _revision(engine) == HEAD
    assert await _differences(engine, Base.metadata) == []


async def test_a_schema_newer_than_the_code_is_refused_in_one_line(engine: AsyncEngine) -> None:
    store = CaseStore(engine)
    await store.create_schema()
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(StoreError, match="cannot be upgraded") as raised:
        await store.create_schema()
    assert "9999_future" in str(raised.value) and "\n" not in str(raised.value)


async def test_a_failed_migration_is_a_store_error(engine: AsyncEngine) -> None:
    """Errors go through the store's own error (no row data): here a table in the way."""
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE calendar_sources (source_id VARCHAR(64))"))
        await conn.run_sync(LEGACY.create_all)
        await conn.run_sync(lambda c: command.stamp(migrations.alembic_config(c), "0001_baseline"))
    with pytest.raises(StoreError, match=r"^case store error \("):
        await CaseStore(engine).create_schema()


async def test_a_store_from_before_the_claim_column_gets_it(engine: AsyncEngine) -> None:
    """Stores created before `attempts.claim` existed (main before this change's first commit):
    without the column every message would fail to be claimed."""
    async with engine.begin() as conn:
        await conn.run_sync(LEGACY.create_all)
        await conn.exec_driver_sql("ALTER TABLE attempts DROP COLUMN claim")
    store = CaseStore(engine)
    await store.create_schema()

    assert await _differences(engine, Base.metadata) == []
    request = directory_data.outreach_request()
    assert await store.claim_attempt(request, T0, "try-1", None)
