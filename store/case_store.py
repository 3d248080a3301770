"""CaseStore: every read and write of the case store, each write idempotent by key.

Activities are retried and workflows replayed, so every write is an `INSERT ... ON CONFLICT`
(the dialect's own, SQLite or PostgreSQL) or a guarded `UPDATE`: running it twice leaves the same
rows as running it once. A finished outreach attempt is final: later writes leave it unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

from alembic.util import CommandError
from sqlalchemy import Executable, case, event, select, update
from sqlalchemy.engine import CursorResult, RowMapping, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from models.case import Attempt, AttemptResult, CaseHeader, NoteEntry, Resolution, Stage
from models.directory import Channel, ClientProfile, ConsentChange, Therapist
from models.outreach import NoteRecord, OpenCaseRequest, OutreachRequest, StageChange
from store import migrations, prepared
from store import sqlite as sqlite_transactions
from store.calendar_records import CalendarRecords
from store.errors import StoreError, raise_unchained, safe_store_error, stored
from store.rows import AttemptRow, AttemptState, AttendanceStatus, CaseRow
from store.schema import (
    AttemptTable,
    AttendanceTable,
    CaseTable,
    ClientTable,
    NoteTable,
    ResolutionTable,
    TherapistTable,
)
from store.stats import CaseStatsQueries
from store.threads import Rows, SqliteThreads, StoreConnection
from store.web_records import WebRecords
from store.whole_calls import whole_calls

__all__ = ["AttemptRow", "AttemptState", "AttendanceStatus", "CaseRow", "CaseStore"]

# What a driver raises: SQLAlchemy's errors (wrapping asyncpg's and sqlite3's), the network's,
# and a text the driver cannot encode (a lone surrogate, from a command-line argument that is
# not UTF-8), which sqlite3 raises unwrapped.
_DRIVER_ERRORS = (SQLAlchemyError, OSError, UnicodeError)
_SQLITE_BUSY_TIMEOUT_S = 30  # several activities may write at once; wait rather than fail
# To connect (a pooled connection is waited for up to SQLAlchemy's 30 s: a burst of 300 cases
# opened at once queues longer than 10 s for the pool's 15 connections).
_POSTGRES_TIMEOUT_S = 10


@whole_calls  # a close-out's cancellation never cuts a store call in half (store/whole_calls.py)
class CaseStore(CalendarRecords, CaseStatsQueries, WebRecords):
    def __init__(
        self, engine: AsyncEngine, sqlite_busy_timeout_s: float = _SQLITE_BUSY_TIMEOUT_S
    ) -> None:
        """`engine`: PostgreSQL through asyncpg, or SQLite (then its URL only: the store runs
        SQLite on threads of its own, see `store.threads`)."""
        if engine.dialect.name not in prepared.UPSERTS:
            raise ValueError(f"unsupported database {engine.dialect.name!r}: SQLite or PostgreSQL")
        self._engine = engine
        self._threads: SqliteThreads | None = None
        if engine.dialect.name == "sqlite":
            self._threads = SqliteThreads(engine.url, sqlite_busy_timeout_s)
            sync = self._threads.engine
            sqlite_transactions.manage_transactions(sync)
            self._sqlite_reader = sync
            self._sqlite_writer = sync.execution_options(**sqlite_transactions.WRITE)
            self._sqlite_one = sync.execution_options(**sqlite_transactions.ONE_STATEMENT)
        # A statement on its own needs no transaction around it: on SQLite no BEGIN (see
        # `store.sqlite`), on PostgreSQL autocommit (no BEGIN and ROLLBACK round trips).
        self._one_statement = engine.execution_options(isolation_level="AUTOCOMMIT")
        # SQLite has one writer at a time: this process's writers queue here, in order, rather
        # than in SQLite's busy handler, which polls and can starve a waiter past its timeout.
        # PostgreSQL takes row locks: its writers need not queue.
        self._write_turn: AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        self._insert = prepared.UPSERTS[engine.dialect.name]
        self._prepared = prepared.inserts(engine.dialect.name)

    def count_statements(self) -> Callable[[], tuple[int, int]]:
        """Count the SQL statements this store sends from now on (the benchmarks: where a
        case's time goes). The function returned gives (statements, of which writes) so far;
        BEGIN and the like count as statements where the driver sends them."""
        counts = [0, 0]

        def counted(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
            counts[0] += 1
            counts[1] += statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE")

        engine = self._threads.engine if self._threads else self._engine.sync_engine
        event.listen(engine, "before_cursor_execute", counted)
        return lambda: (counts[0], counts[1])

    @classmethod
    def from_url(cls, url: str, sqlite_busy_timeout_s: float = _SQLITE_BUSY_TIMEOUT_S) -> CaseStore:
        """`sqlite+aiosqlite:///path/cases.db` (the directory is created) or
        `postgresql+asyncpg://user@host/db`. On SQLite a writer waits up to
        `sqlite_busy_timeout_s` for the write lock."""
        try:
            parsed = make_url(url)
            if parsed.get_backend_name() != "sqlite":
                # A store that cannot be reached must fail a try well within its activity's 30 s,
                # not time it out: a failure keeps the try's last heartbeat ("not sent"), a
                # timeout may not. (No command timeout: under load it cut connections off.)
                # 20 connections and 20 more at peaks (SQLAlchemy's 5 + 10 made a worker's local
                # activities queue behind its activities, each holding a workflow-task slot:
                # 300 cases at once kept an answer waiting past 30 s; with these, none did).
                # No pre-ping: it cost three round trips per checkout. A connection an outage
                # broke fails its call once; SQLAlchemy then discards every connection older
                # than the failure, and the call's retry gets a fresh one (the outage drill).
                return cls(
                    create_async_engine(
                        url,
                        pool_size=20,
                        max_overflow=20,
                        hide_parameters=True,
                        connect_args={"timeout": _POSTGRES_TIMEOUT_S},
                    )
                )
            if parsed.database and parsed.database != ":memory:":
                folder = Path(parsed.database).parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    reason = exc.strerror or type(exc).__name__
                    raise StoreError(f"case store: cannot create {folder}: {reason}") from None
            engine = create_async_engine(url)  # its URL and dialect: see `store.threads`
            return cls(engine, sqlite_busy_timeout_s)
        except (ArgumentError, ImportError, ValueError):  # never the URL: it may hold a password
            raise StoreError(
                "DATABASE_URL is not a case store URL: sqlite+aiosqlite:///path/cases.db or "
                "postgresql+asyncpg://user@host/db"
            ) from None

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[StoreConnection]:
        """A write transaction (on SQLite holding the write lock from its start, see
        `store.sqlite`) whose errors never quote rows (see `store.errors`)."""
        error: StoreError | None = None
        try:
            async with self._write_turn, self._transaction() as conn:
                yield conn
        except _DRIVER_ERRORS as exc:
            error = safe_store_error(exc)
        if error is not None:
            raise_unchained(error)  # not even a __context__ holds the driver's text

    async def _write_one(
        self, stmt: Executable, values: Mapping[str, Any] | None = None
    ) -> RowMapping | None:
        """A write of one statement, outside a transaction: on SQLite no BEGIN (the statement
        takes the write lock at its start, waiting under the busy timeout as `BEGIN IMMEDIATE`
        does: no read of its own comes before its write), on PostgreSQL autocommit. Two round
        trips to the driver fewer than `_begin`, on the calls every message makes. Its first
        row (RETURNING), if any. `values`: those of a statement built once (`store.prepared`)."""
        try:
            async with self._write_turn:
                result = await self._statement(True, stmt, values)
                return result.mappings().first() if result.returns_rows else None
        except _DRIVER_ERRORS as exc:
            error = safe_store_error(exc)
        raise_unchained(error)  # outside the handler: not even a __context__ quotes the driver

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[StoreConnection]:
        """A read of several statements, in one transaction (one snapshot of the store)."""
        error: StoreError | None = None
        try:
            reading: AbstractAsyncContextManager[StoreConnection] = (
                self._threads.connect(self._sqlite_reader, write=False, transaction=False)
                if self._threads
                else self._engine.connect()
            )
            async with reading as conn:
                yield conn
        except _DRIVER_ERRORS as exc:
            error = safe_store_error(exc)
        if error is not None:
            raise_unchained(error)

    def _transaction(self) -> AbstractAsyncContextManager[StoreConnection]:
        if self._threads:
            return self._threads.connect(self._sqlite_writer, write=True, transaction=True)
        return self._engine.begin()

    async def _statement(
        self, write: bool, stmt: Executable, values: Mapping[str, Any] | None
    ) -> Rows | CursorResult[Any]:
        """One statement outside a transaction, on a connection taken for it alone."""
        if self._threads:
            return await self._threads.one_statement(self._sqlite_one, write, stmt, values)
        async with self._one_statement.connect() as conn:
            return await conn.execute(stmt, values)

    async def create_schema(self) -> None:
        """Create or upgrade the schema: `alembic upgrade head` with the migrations in
        `store/migrations`, so a store made by an older version gains what was added since and
        keeps its rows (`create_all` never changes a table that exists). A store from before
        migrations is stamped with the revision it already has first. Running it again is a
        no-op."""
        try:
            async with self._begin() as conn:
                await conn.run_sync(migrations.upgrade)
        except CommandError as exc:  # e.g. a revision this code does not know: newer code ran
            raise StoreError(f"case store schema cannot be upgraded ({exc})") from None

    async def close(self) -> None:
        if self._threads:
            await self._threads.dispose()
        await self._engine.dispose()

    async def _first(
        self, query: Executable, values: Mapping[str, Any] | None = None
    ) -> RowMapping | None:
        return (await self._read_one(query, values)).mappings().first()

    async def _all(
        self, query: Executable, values: Mapping[str, Any] | None = None
    ) -> list[RowMapping]:
        return list((await self._read_one(query, values)).mappings().all())

    async def _read_one(
        self, query: Executable, values: Mapping[str, Any] | None
    ) -> Rows | CursorResult[Any]:
        try:
            return await self._statement(False, query, values)
        except _DRIVER_ERRORS as exc:
            error = safe_store_error(exc)
        raise_unchained(error)

    # ------------------------------------------------------------------ directory (PHI)
    async def import_directory(
        self, therapists: list[Therapist], clients: list[ClientProfile]
    ) -> None:
        """Upsert every record by id in one transaction: a failure applies nothing. A consent
        the client withdrew since (e.g. by replying STOP) stays withdrawn: the file may predate
        it, and only the client can give it back."""
        clients = await self._keep_withdrawals(clients)
        therapist_rows = [
            {"therapist_id": t.therapist_id, "record": t.model_dump(mode="json")}
            for t in therapists
        ]
        client_rows = [
            {
                "client_id": c.client_id,
                "therapist_id": c.therapist_id,
                "record": c.model_dump(mode="json"),
            }
            for c in clients
        ]
        async with self._begin() as conn:
            if therapist_rows:
                stmt = self._insert(TherapistTable)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["therapist_id"], set_={"record": stmt.excluded.record}
                )
                await conn.execute(stmt, therapist_rows)
            if client_rows:
                stmt = self._insert(ClientTable)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["client_id"],
                    set_={
                        "record": stmt.excluded.record,
                        "therapist_id": stmt.excluded.therapist_id,
                    },
                )
                await conn.execute(stmt, client_rows)

    async def _keep_withdrawals(self, clients: list[ClientProfile]) -> list[ClientProfile]:
        ids = [c.client_id for c in clients]
        known: dict[str, ClientProfile] = {}
        for start in range(0, len(ids), 500):  # bounded IN lists
            query = select(ClientTable.record).where(ClientTable.client_id.in_(ids[start:][:500]))
            for row in await self._all(query):
                record = stored(ClientProfile, row["record"])
                known[record.client_id] = record
        merged = []
        for client in clients:
            changes = known[client.client_id].consent_changes if client.client_id in known else []
            latest = {change.channel: change.granted for change in changes}
            withdrawn = {c.value: False for c, granted in latest.items() if not granted}
            merged.append(
                client.model_copy(
                    update={
                        "consent_changes": changes,
                        "consent": client.consent.model_copy(update=withdrawn),
                    }
                )
            )
        return merged

    async def get_client(self, client_id: str) -> ClientProfile | None:
        row = await self._first(prepared.CLIENT, {"b_id": client_id})
        return stored(ClientProfile, row["record"]) if row else None

    async def get_therapist(self, therapist_id: str) -> Therapist | None:
        row = await self._first(prepared.THERAPIST, {"b_id": therapist_id})
        return stored(Therapist, row["record"]) if row else None

    async def therapist_ids(self) -> set[str]:
        return {r["therapist_id"] for r in await self._all(select(TherapistTable.therapist_id))}

    async def client_ids(self) -> set[str]:
        return {r["client_id"] for r in await self._all(select(ClientTable.client_id))}

    # ------------------------------------------------------------------ cases
    async def open_case(self, request: OpenCaseRequest) -> None:
        """Record a new case in `grace_wait`; a case already recorded is left untouched."""
        case = {**_header(request), "stage": Stage.grace_wait.value}
        await self._write_one(self._prepared.case, {**case, "stage_since": request.opened_at})

    async def set_stage(self, change: StageChange) -> None:
        """Move the case to `change.stage`. The same stage again keeps the first `stage_since`
        (a replay must not reset how long the case has waited), and a closed case stays closed
        (a late, timed-out activity attempt must not reopen it)."""
        stage = {"stage": change.stage.value, "stage_since": change.at}
        await self._write_one(
            prepared.STAGE, {"b_case_id": change.case_id, "b_stage": change.stage.value, **stage}
        )

    async def get_case(self, case_id: str) -> CaseRow | None:
        row = await self._first(select(CaseTable).where(CaseTable.case_id == case_id))
        return stored(CaseRow, dict(row)) if row else None

    async def list_cases(self, open_only: bool = True) -> list[CaseRow]:
        query = select(CaseTable).order_by(CaseTable.opened_at, CaseTable.case_id)
        if open_only:
            query = query.where(CaseTable.closed_at.is_(None))
        return [stored(CaseRow, dict(r)) for r in await self._all(query)]

    # ------------------------------------------------------------------ outreach attempts
    async def get_attempt(self, key: str) -> AttemptRow | None:
        row = await self._first(select(AttemptTable).where(AttemptTable.key == key))
        return stored(AttemptRow, dict(row)) if row else None

    async def get_attempts(self, keys: list[str]) -> dict[str, AttemptRow]:
        """The rows of these attempts that exist, by key, in one read (a step's messages)."""
        rows = await self._all(prepared.ATTEMPTS, {"b_keys": keys})
        return {row["key"]: stored(AttemptRow, dict(row)) for row in rows}

    async def start_attempt(self, request: OutreachRequest, at: datetime) -> AttemptRow:
        """Write an unfinished row for a message, as a claim does but without one (the tests'
        way to set a row up; a message recorded without being sent goes through
        `record_result`). A new row gets `started_at=at`; an existing one is left as it is."""
        stmt = self._insert(AttemptTable).values(**self._new_attempt(request, at, claim=None))
        async with self._begin() as conn:
            await conn.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
            query = select(AttemptTable).where(AttemptTable.key == request.key)
            row = (await conn.execute(query)).mappings().one()
        return stored(AttemptRow, dict(row))

    async def claim_attempt(
        self, request: OutreachRequest, at: datetime, claim: str, seen: AttemptRow | None
    ) -> bool:
        """Claim the right to call the provider, just before calling it: the row becomes
        `sending` with this try's `claim` token, but only if it is still as this try `seen` it
        (absent, or `retry`/`sending` under the same claim). A compare-and-set, so of two
        tries running at once (one timed out but still running) only one sends."""
        # A row comes back only if this statement wrote it, and writing it is the claim: no
        # read afterwards for another try to change in between.
        if seen is None:
            new_row = self._new_attempt(request, at, claim)
            return await self._write_one(self._prepared.claim_new, new_row) is not None
        as_seen = {"b_key": request.key, "b_seen_state": seen.state, "b_seen_claim": seen.claim}
        again = {**as_seen, "state": "sending", "claim": claim}
        return await self._write_one(prepared.CLAIM_AGAIN, again) is not None

    @staticmethod
    def _new_attempt(request: OutreachRequest, at: datetime, claim: str | None) -> dict[str, Any]:
        return {
            "key": request.key,
            "case_id": request.case_id,
            "step": request.step,
            "channel": request.channel.value,
            "recipient_role": request.recipient_role.value,
            "purpose": request.purpose.value,
            "round": request.round,
            "state": "sending",
            "claim": claim,
            "detail": "",
            "dry_run": False,
            "started_at": at,
        }

    async def _advance(self, key: str, state: AttemptState, **values: Any) -> None:
        """Change an unfinished attempt; unknown keys and finished attempts are left alone."""
        stmt = (
            update(AttemptTable)
            .where(AttemptTable.key == key, AttemptTable.state != "done")
            .values(state=state, **values)
        )
        async with self._begin() as conn:
            await conn.execute(stmt)

    async def mark_accepted(self, key: str, provider_id: str | None) -> None:
        """The provider took the message: never send it again, only await its outcome."""
        await self._advance(key, "accepted", provider_id=provider_id)

    async def mark_retryable(self, key: str, detail: str) -> None:
        """The provider refused it (429/5xx): nothing went out, so sending again is safe."""
        await self._advance(key, "retry", detail=detail)

    async def finish_attempt(
        self,
        key: str,
        result: AttemptResult,
        detail: str,
        provider_id: str | None,
        dry_run: bool,
        at: datetime,
    ) -> Attempt:
        """Record the final result and return it; if the attempt was already finished, the
        stored result is returned unchanged. Raises LookupError if it was never started."""
        finished = _finished(result, detail, provider_id, dry_run, at)
        async with self._begin() as conn:
            row = await self._finish_in(conn, key, finished)
        return _recorded(row, f"outreach attempt {key} was never started")

    async def record_result(
        self,
        request: OutreachRequest,
        result: AttemptResult,
        detail: str,
        provider_id: str | None,
        dry_run: bool,
        at: datetime,
    ) -> Attempt:
        """The final result of a message, whether or not a row was written for it before (one
        never sent has none), in one transaction and mostly one statement: the row's update,
        else (no row) its insert as finished. A finished attempt's stored result is returned
        unchanged."""
        finished = _finished(result, detail, provider_id, dry_run, at)
        # Mostly the row is there, unfinished: its update alone (RETURNING the row) is all.
        row = await self._write_one(prepared.FINISH, {"b_key": request.key, **finished})
        if row is not None:
            return stored(AttemptRow, dict(row)).as_attempt()
        async with self._begin() as conn:  # absent, or finished before: in one transaction
            row = await self._finish_in(conn, request.key, finished)
            if row is None:
                new_row = {**self._new_attempt(request, at, claim=None), **finished}
                row = (await conn.execute(self._prepared.attempt, new_row)).mappings().first()
            if row is None:  # PostgreSQL: another try inserted it in between; it is there now
                row = await self._finish_in(conn, request.key, finished)
        return _recorded(row, f"outreach attempt {request.key} could not be recorded")

    @staticmethod
    async def _finish_in(
        conn: StoreConnection, key: str, finished: dict[str, Any]
    ) -> RowMapping | None:
        """Finish the attempt `key` unless it is finished; its row (None if it has none)."""
        # RETURNING: the row as written, without reading it back; an attempt finished before
        # (no row updated) is read as it stands.
        row = (await conn.execute(prepared.FINISH, {"b_key": key, **finished})).mappings().first()
        if row is None:
            query = select(AttemptTable).where(AttemptTable.key == key)
            row = (await conn.execute(query)).mappings().first()
        return row

    async def finish_abandoned_attempts(self, case_id: str, at: datetime) -> int:
        """At the close-out, once every activity of the case has ended: an attempt still
        unfinished was abandoned midway (the close-out cancelled it between two tries, or a
        try was cut off). Record what is known, so no row stays half written: refused by the
        provider -> `failed` (nothing went out); claimed but unanswered -> `unconfirmed`;
        taken by the provider -> `sent` (a call: `unconfirmed`, its outcome never came)."""
        table = AttemptTable
        closed = "the case closed before this message was finished"
        result = case(
            (table.state == "retry", AttemptResult.failed.value),
            (
                (table.state == "accepted") & (table.channel != Channel.voice.value),
                AttemptResult.sent.value,
            ),
            else_=AttemptResult.unconfirmed.value,
        )
        detail = case(
            (table.state == "retry", closed + "; the provider had refused it, nothing went out"),
            (table.state == "accepted", closed + "; the provider had taken it"),
            else_=closed + "; it may have gone out, not resent",
        )
        stmt = (
            update(table)
            .where(table.case_id == case_id, table.state != "done")
            .values(state="done", result=result, detail=detail, finished_at=at)
        )
        async with self._begin() as conn:
            return (await conn.execute(stmt)).rowcount or 0

    async def attempts_for_case(self, case_id: str) -> list[Attempt]:
        """The finished attempts of a case, in the order their results were recorded."""
        query = (
            select(AttemptTable)
            .where(AttemptTable.case_id == case_id, AttemptTable.state == "done")
            .order_by(AttemptTable.finished_at, AttemptTable.started_at, AttemptTable.key)
        )
        return [stored(AttemptRow, dict(r)).as_attempt() for r in await self._all(query)]

    # ------------------------------------------------------------------ notes
    async def add_note(self, record: NoteRecord) -> None:
        """Insert the note once; the same key again changes nothing."""
        stmt = self._insert(NoteTable).values(
            key=record.key,
            case_id=record.case_id,
            at=record.entry.at,
            author=record.entry.author,
            text=record.entry.text,
        )
        async with self._begin() as conn:
            await conn.execute(stmt.on_conflict_do_nothing())

    async def notes_for_case(self, case_id: str) -> list[NoteEntry]:
        query = (
            select(NoteTable.at, NoteTable.author, NoteTable.text)
            .where(NoteTable.case_id == case_id)
            .order_by(NoteTable.at, NoteTable.key)
        )
        return [stored(NoteEntry, dict(r)) for r in await self._all(query)]

    # ------------------------------------------------------------------ attendance history
    async def record_attendance(
        self,
        appointment_id: str,
        client_id: str,
        scheduled_start: datetime,
        status: AttendanceStatus | str,
    ) -> None:
        """Record how an appointment went. Several parts of the system say it (the case opens on
        a presumed no-show, the calendar reports a late cancellation, the close-out knows the
        client came), in any order: the strongest evidence wins, whatever came last (see
        `ATTENDANCE_PRECEDENCE`)."""
        if status not in get_args(AttendanceStatus):
            raise ValueError(f"attendance status must be one of {get_args(AttendanceStatus)}")
        stmt = self._insert(AttendanceTable).values(
            appointment_id=appointment_id,
            client_id=client_id,
            scheduled_start=scheduled_start,
            status=status,
        )
        table = AttendanceTable.__table__
        stronger = _attendance_rank(stmt.excluded.status) >= _attendance_rank(table.c.status)
        stmt = stmt.on_conflict_do_update(
            index_elements=["appointment_id"],
            set_={
                "status": case((stronger, stmt.excluded.status), else_=table.c.status),
                "client_id": stmt.excluded.client_id,
                "scheduled_start": stmt.excluded.scheduled_start,
            },
        )
        async with self._begin() as conn:
            await conn.execute(stmt)

    async def missed_sessions(
        self, client_id: str, since: datetime, until: datetime, status: str = "no_show"
    ) -> list[datetime]:
        """Start times of the client's no-shows (or late cancellations, `status`
        "late_cancelled") with since <= start <= until, oldest first."""
        query = (
            select(AttendanceTable.scheduled_start)
            .where(
                AttendanceTable.client_id == client_id,
                AttendanceTable.status == status,
                AttendanceTable.scheduled_start >= since,
                AttendanceTable.scheduled_start <= until,
            )
            .order_by(AttendanceTable.scheduled_start)
        )
        return [r["scheduled_start"] for r in await self._all(query)]

    async def attendance_between(
        self, client_id: str, since: datetime, until: datetime
    ) -> list[tuple[datetime, str]]:
        """Every recorded session of the client with since <= start <= until, oldest first,
        with its status (the close-out page's attendance chart)."""
        query = (
            select(AttendanceTable.scheduled_start, AttendanceTable.status)
            .where(
                AttendanceTable.client_id == client_id,
                AttendanceTable.scheduled_start >= since,
                AttendanceTable.scheduled_start <= until,
            )
            .order_by(AttendanceTable.scheduled_start)
        )
        return [(r["scheduled_start"], r["status"]) for r in await self._all(query)]

    # ------------------------------------------------------------------ resolutions
    async def save_resolution(self, resolution: Resolution) -> None:
        """Keep the documented resolution and close the case, in one transaction. The case row
        is created from the resolution if it is somehow missing, so the record is complete."""
        document = self._insert(ResolutionTable).values(
            case_id=resolution.case_id,
            recorded_at=resolution.closed_at,
            document=resolution.model_dump(mode="json"),
        )
        document = document.on_conflict_do_update(
            index_elements=["case_id"],
            set_={
                "document": document.excluded.document,
                "recorded_at": document.excluded.recorded_at,
            },
        )
        case = self._insert(CaseTable).values(
            **_header(resolution),
            stage=Stage.closed.value,
            stage_since=resolution.closed_at,
            closed_at=resolution.closed_at,
            outcome=resolution.outcome.value,
        )
        closing: Mapping[str, Any] = {
            name: getattr(case.excluded, name)
            for name in ("stage", "stage_since", "closed_at", "outcome")
        }
        case = case.on_conflict_do_update(index_elements=["case_id"], set_=closing)
        async with self._begin() as conn:
            await conn.execute(document)
            await conn.execute(case)

    async def get_resolution(self, case_id: str) -> Resolution | None:
        query = select(ResolutionTable.document).where(ResolutionTable.case_id == case_id)
        row = await self._first(query)
        return stored(Resolution, row["document"]) if row else None

    async def add_addendum(self, case_id: str, entry: NoteEntry) -> bool:
        """Late documentation on a closed case: a dated addendum to its resolution (and to its
        notes). The same entry twice is kept once. False if the case has no resolution."""
        async with self._begin() as conn:
            query = select(ResolutionTable.document).where(ResolutionTable.case_id == case_id)
            row = (await conn.execute(query.with_for_update())).mappings().first()
            if row is None:
                return False
            resolution = stored(Resolution, row["document"])
            if entry not in resolution.addenda:
                resolution.addenda.append(entry)
                await conn.execute(
                    update(ResolutionTable)
                    .where(ResolutionTable.case_id == case_id)
                    .values(document=resolution.model_dump(mode="json"))
                )
            number = resolution.addenda.index(entry) + 1
            note = self._insert(NoteTable).values(
                key=f"{case_id}/addendum/{number}",
                case_id=case_id,
                at=entry.at,
                author=entry.author,
                text=entry.text,
            )
            await conn.execute(note.on_conflict_do_nothing())
        return True

    async def mark_ended_outside(self, case_id: str, status: str, at: datetime) -> bool:
        """A case whose workflow ended with no code running (terminated in the Web UI, timed
        out, gone): close its row as `terminated` with a note, so it is not "open" forever.
        Only an open case changes; returns whether it did."""
        async with self._begin() as conn:
            changed = await conn.execute(
                update(CaseTable)
                .where(CaseTable.case_id == case_id, CaseTable.closed_at.is_(None))
                .values(stage=Stage.closed.value, closed_at=at, outcome="terminated")
            )
            if not changed.rowcount:
                return False
            note = self._insert(NoteTable).values(
                key=f"{case_id}/ended-outside",
                case_id=case_id,
                at=at,
                author="system",
                text=f"Workflow ended outside the procedure ({status}); "
                "no documented resolution was recorded.",
            )
            await conn.execute(note.on_conflict_do_nothing())
        return True

    async def withdraw_consent(
        self, client_id: str, channel: Channel, at: datetime, source: str
    ) -> bool:
        """Record that a client withdrew consent to a channel (e.g. replied STOP), with its
        time and source, so later cases honour it. Idempotent; False for an unknown client."""

        def withdrawal(client: ClientProfile) -> ConsentChange | None:
            change = ConsentChange(at=at, channel=channel, granted=False, source=source)
            return None if change in client.consent_changes else change

        return await self._record_consent_change(client_id, withdrawal)

    async def _record_consent_change(
        self, client_id: str, change_for: Callable[[ClientProfile], ConsentChange | None]
    ) -> bool:
        """Apply the consent change `change_for` decides on (None: nothing to change) to the
        client's record, under a row lock. Returns whether the record changed."""
        async with self._begin() as conn:
            query = select(ClientTable.record).where(ClientTable.client_id == client_id)
            row = (await conn.execute(query.with_for_update())).mappings().first()
            if row is None:
                return False
            client = stored(ClientProfile, row["record"])
            change = change_for(client)
            if change is None:
                return False
            consent = client.consent.model_copy(update={change.channel.value: change.granted})
            client = client.model_copy(
                update={"consent": consent, "consent_changes": [*client.consent_changes, change]}
            )
            await conn.execute(
                update(ClientTable)
                .where(ClientTable.client_id == client_id)
                .values(record=client.model_dump(mode="json"))
            )
        return True


# Weakest first. A case opens on a presumed no-show; a cancellation (made after the session's
# start, or inside the late-cancellation window) explains the absence better; that the client
# came after all (checked in, arrived late) is the strongest: it is what happened.
ATTENDANCE_PRECEDENCE: tuple[AttendanceStatus, ...] = (
    "no_show",
    "late_cancelled",
    "attended_late",
    "attended",
)


def _attendance_rank(status: Any) -> Any:
    return case(
        *((status == name, rank) for rank, name in enumerate(ATTENDANCE_PRECEDENCE)), else_=-1
    )


def _recorded(row: RowMapping | None, missing: str) -> Attempt:
    """The attempt a finishing statement returned; LookupError(`missing`) if none."""
    if row is None:
        raise LookupError(missing)
    return stored(AttemptRow, dict(row)).as_attempt()


def _finished(
    result: AttemptResult, detail: str, provider_id: str | None, dry_run: bool, at: datetime
) -> dict[str, Any]:
    """The columns of an attempt's final result."""
    return {
        "state": "done",
        "result": result.value,
        "detail": detail,
        "provider_id": provider_id,
        "dry_run": dry_run,
        "finished_at": at,
    }


def _header(record: CaseHeader) -> dict[str, Any]:
    """The case row's columns that every record of a case carries."""
    return {name: getattr(record, name) for name in CaseHeader.model_fields}
