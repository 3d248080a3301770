"""Case-store errors that never quote a row.

A database driver's message may quote the statement's parameters (asyncpg's "invalid input for
query argument $5: {...}" prints a client's record), and SQLAlchemy appends them to its own
text. Such a message would land in a terminal, a log shipper or Temporal's history (an
activity failure). So every store error is re-raised as `StoreError`, which names only the
kind of error and its SQLSTATE.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError

from store.schema import NaiveDateTimeError

ModelT = TypeVar("ModelT", bound=BaseModel)


class StoreError(Exception):
    """The case store failed; the message carries no data from the database."""


def stored(model: type[ModelT], data: Any) -> ModelT:
    """A row read back as `model`. A row that no longer fits (written by other code, edited
    by hand) is a StoreError naming the fields: pydantic's own message quotes the whole row."""
    problem: str | None = None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(map(str, e["loc"])) or "row" for e in exc.errors()})
        problem = f"case store: a stored {model.__name__} cannot be read ({', '.join(fields)})"
    raise_unchained(StoreError(problem))


def raise_unchained(error: StoreError) -> NoReturn:
    """Raise `error` with nothing chained to it. `raise ... from None` only hides the driver's
    exception from tracebacks: it stays in `__context__`, with the parameters in its text, for
    any error reporter that walks the chain."""
    try:
        raise error
    finally:
        error.__context__ = None


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
    if isinstance(exc, UnicodeError):
        return StoreError("case store error (text that is not valid Unicode cannot be stored)")
    return StoreError(f"case store unreachable ({type(exc).__name__})")


def _code_name(code: str) -> str:
    return code if code.startswith("SQLITE_") else f"SQLSTATE {code}"
