"""Case-store errors that never quote a row.

A database driver's message may quote the statement's parameters (asyncpg's "invalid input for
query argument $5: {...}" prints a client's record), and SQLAlchemy appends them to its own
text. Such a message would land in a terminal, a log shipper or Temporal's history (an
activity failure). So every store error is re-raised as `StoreError`, which names only the
kind of error and its SQLSTATE.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError

from store.schema import NaiveDateTimeError


class StoreError(Exception):
    """The case store failed; the message carries no data from the database."""


def safe_store_error(exc: BaseException) -> StoreError:
    """A StoreError describing `exc` without its text (which may quote rows or parameters)."""
    if isinstance(exc, DBAPIError):
        original = exc.orig
        kind = type(original).__name__ if original is not None else type(exc).__name__
        code = (
            getattr(original, "sqlstate", None)
            or getattr(original, "pgcode", None)
            or getattr(original, "sqlite_errorname", None)  # e.g. SQLITE_BUSY: a lock timed out
        )
        if exc.connection_invalidated or isinstance(exc.orig, ConnectionError):
            return StoreError(f"case store unreachable ({kind})")
        return StoreError(f"case store error ({kind}" + (f", {_code_name(code)})" if code else ")"))
    if isinstance(exc, StatementError) and isinstance(exc.orig, NaiveDateTimeError):
        return StoreError(str(exc.orig))  # our own fixed text
    if isinstance(exc, SQLAlchemyError):
        return StoreError(f"case store error ({type(exc).__name__})")
    return StoreError(f"case store unreachable ({type(exc).__name__})")


def _code_name(code: str) -> str:
    return code if code.startswith("SQLITE_") else f"SQLSTATE {code}"
