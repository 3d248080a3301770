"""How the store's SQLite connections take their locks, so concurrent activities never deadlock.

Python's sqlite3 driver begins a transaction by itself, DEFERRED, just before the first write: a
transaction then holds a read lock and asks to upgrade it while another connection is
committing, and SQLite answers "database is locked" at once or after the whole busy timeout
(the demo's close-out failed this way on a loaded machine). So the store begins every
transaction itself:

- writes (`CaseStore._begin`) with `BEGIN IMMEDIATE`: the write lock is taken first, waiting in
  turn under the busy timeout, never upgraded midway;
- reads with a plain `BEGIN`, which in WAL mode reads a snapshot and blocks no writer;
- a statement on its own (`CaseStore._first`, `_all`, `_write_one`) with no BEGIN at all:
  SQLite runs it in a transaction of its own (a write takes the write lock at its start, as
  `BEGIN IMMEDIATE` does).

WAL (write-ahead log) lets readers and one writer work at the same time, and
`synchronous=NORMAL` is its usual durable-enough setting: a committed transaction survives a
crash of the process; a power cut may lose the last ones, never corrupt the file.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

WRITE = {"sqlite_begin": "IMMEDIATE"}  # execution options of the store's write transactions
ONE_STATEMENT = {"sqlite_begin": "none"}  # ... and of its reads of a single statement


def manage_transactions(engine: Engine) -> None:
    """Make `engine` begin its own transactions (see the module docstring). Idempotent."""
    if event.contains(engine, "begin", _begin):
        return
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _begin)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver no longer begins transactions itself
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # kept by the file; "memory" for :memory:
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _begin(conn: Connection) -> None:
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is not None and dbapi_connection.isolation_level is not None:
        dbapi_connection.isolation_level = None  # pooled before this engine was managed
    mode = conn.get_execution_options().get("sqlite_begin", "")
    if mode == ONE_STATEMENT["sqlite_begin"]:
        return  # autocommit: the statement is its own transaction
    conn.exec_driver_sql(f"BEGIN {mode}".strip())
