"""SQLite on threads of the store's own: one trip from the event loop per statement, not four.

Through aiosqlite (SQLAlchemy's asyncio driver for SQLite) a statement is four trips between the
event loop and the driver's thread: open a cursor, run the statement, fetch its rows, close the
cursor; closing the connection was a fifth. Each trip is a queue, a thread woken up and a future
resolved back on the loop, and together they were most of the CPU a statement cost the worker
(`python -m bench.store_statements`: the driver alone cost more than the SQL did). Here the
standard sqlite3 driver runs under SQLAlchemy's ordinary (synchronous) engine on threads of the
store's own, and a statement with all its rows is one trip; a store call of one statement
(most of them) is one trip in all, connection included.

Writes run on one thread: SQLite takes one writer at a time anyway, and a write waiting out
another process's lock (the busy timeout) holds up no read. Reads run on a few threads of
their own (WAL: readers never wait for the writer). The store's transactions are begun as
`store.sqlite` says, on the same connection events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, Executable, create_engine
from sqlalchemy.engine import Connection, Row, RowMapping
from sqlalchemy.engine.url import URL
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import StaticPool

T = TypeVar("T")
_READ_THREADS = 4


class Rows:
    """A statement's result, read whole on the store's thread: what the store's callers use of
    SQLAlchemy's `Result` (`.all()`, `.first()`, `.mappings()`, `.rowcount`, `.returns_rows`)."""

    def __init__(self, rows: list[Row[Any]], rowcount: int, returns_rows: bool) -> None:
        self._rows, self.rowcount, self.returns_rows = rows, rowcount, returns_rows

    def all(self) -> list[Row[Any]]:
        return list(self._rows)

    def first(self) -> Row[Any] | None:
        return self._rows[0] if self._rows else None

    def mappings(self) -> Mappings:
        return Mappings([row._mapping for row in self._rows])


class Mappings:
    def __init__(self, rows: list[RowMapping]) -> None:
        self._rows = rows

    def all(self) -> list[RowMapping]:
        return list(self._rows)

    def first(self) -> RowMapping | None:
        return self._rows[0] if self._rows else None

    def one(self) -> RowMapping:
        if len(self._rows) != 1:
            raise LookupError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]


def _execute(conn: Connection, statement: Executable, values: Mapping[str, Any] | None) -> Rows:
    result = conn.execute(statement, values)
    rows = list(result) if result.returns_rows else []
    return Rows(rows, result.rowcount, result.returns_rows)


class ThreadConnection:
    """A connection checked out on the store's threads, used from the event loop as SQLAlchemy's
    `AsyncConnection` is: `await conn.execute(statement)`, `await conn.run_sync(fn)`."""

    def __init__(self, threads: SqliteThreads, write: bool, conn: Connection) -> None:
        self._threads, self._write, self._conn = threads, write, conn

    async def execute(self, statement: Executable, values: Any = None) -> Rows:
        return await self._threads.run(self._write, _execute, self._conn, statement, values)

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._threads.run(self._write, fn, self._conn, *args)


StoreConnection = AsyncConnection | ThreadConnection  # what the store's calls run statements on


class SqliteThreads:
    """The store's SQLite engine and the threads it runs on."""

    def __init__(self, url: URL, busy_timeout_s: float) -> None:
        memory = url.database in (None, "", ":memory:")
        self.engine: Engine = create_engine(
            url.set(drivername="sqlite+pysqlite"),
            hide_parameters=True,
            # No rollback when a connection goes back to the pool: every store call ends its
            # own transaction (SQLAlchemy rolls back one left open).
            pool_reset_on_return=None,
            # A connection is used by one thread at a time, but not always the same one.
            connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
            # One database per connection in memory: keep one, used by the write thread alone.
            **({"poolclass": StaticPool} if memory else {}),
        )
        self._writes = ThreadPoolExecutor(1, thread_name_prefix="case-store-write")
        self._reads = (
            self._writes
            if memory
            else ThreadPoolExecutor(_READ_THREADS, thread_name_prefix="case-store-read")
        )

    async def run(self, write: bool, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the write thread or a read thread; one trip."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writes if write else self._reads, fn, *args)

    async def one_statement(
        self,
        engine: Engine,
        write: bool,
        statement: Executable,
        values: Mapping[str, Any] | None,
    ) -> Rows:
        """`statement` on a connection of `engine` (an engine with the store's execution
        options), checked out and returned on the same trip."""

        def run() -> Rows:
            with engine.connect() as conn:
                return _execute(conn, statement, values)

        return await self.run(write, run)

    @asynccontextmanager
    async def connect(
        self, engine: Engine, write: bool, transaction: bool
    ) -> AsyncIterator[ThreadConnection]:
        """A connection of `engine` for several statements; with `transaction`, committed if
        the block ends without an error, else rolled back."""

        def open_() -> Connection:
            conn = engine.connect()
            if transaction:
                try:
                    conn.begin()
                except BaseException:
                    conn.close()
                    raise
            return conn

        def close(conn: Connection, commit: bool) -> None:
            try:
                if commit:
                    conn.commit()
            finally:
                conn.close()

        conn = await self.run(write, open_)
        try:
            yield ThreadConnection(self, write, conn)
        except BaseException:
            await self.run(write, close, conn, False)
            raise
        await self.run(write, close, conn, transaction)

    async def dispose(self) -> None:
        """Close every pooled connection (the store can still be used: it opens new ones)."""
        await self.run(True, self.engine.dispose)
