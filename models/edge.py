"""Limits are enforced where input enters, never when history is decoded.

A case's input, its answers and its status are stored in Temporal's history and decoded again
whenever the case is replayed, possibly by a newer version of this code days later. A rule
tightened since then must not make that history unreadable. So the models that history holds
decode leniently, and the strict rules run only "at the edge" (the CLI, Update validators,
policy loading, later the web forms), through `at_edge`, which passes the validation context
`EDGE`. Validators that enforce a limit check `is_edge(info)` first.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError, ValidationInfo

EDGE: dict[str, Any] = {"edge": True}

ModelT = TypeVar("ModelT", bound=BaseModel)

_ID = re.compile(r"^[A-Za-z0-9_.:-]+\Z")


class EdgeError(ValueError):
    """Input rejected where it entered: one line in the product's words, every field named."""


def is_edge(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("edge"))


def at_edge(model: type[ModelT], data: Any) -> ModelT:
    """Validate input from outside with every limit, unknown keys rejected; raise EdgeError."""
    if not isinstance(data, Mapping):
        raise EdgeError(f"expected a JSON object with the fields of {model.__name__}")
    unknown = sorted(printable(str(k)) for k in data if k not in model.model_fields)
    if unknown:
        known = ", ".join(model.model_fields)
        raise EdgeError(f"unknown field {', '.join(unknown)} (expected: {known})")
    try:
        return model.model_validate(dict(data), context=EDGE)
    except ValidationError as exc:
        raise EdgeError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """Pydantic's errors as "field: message; ..." without input values or documentation URLs
    (input may carry PHI, and URLs mean nothing to a therapist)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(printable(str(p)) for p in error["loc"])
        message = printable(
            str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        )
        if not where or message.startswith(f"{where} "):
            parts.append(message)  # a model-level check names its fields itself
        else:
            parts.append(f"{where}: {message}")
    return "; ".join(parts)


def printable(text: str) -> str:
    """A key from outside, shown in a one-line error: control and format characters (a NUL,
    a terminal escape, a right-to-left override, a line separator) escaped, as repr() does."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def checked_text(max_length: int, multiline: bool = False) -> Callable[[str, ValidationInfo], str]:
    """An after-validator for free text: at the edge, non-empty limits and no control characters
    (a NUL cannot be stored by PostgreSQL; other control characters hide text from readers)."""

    def check(value: str, info: ValidationInfo) -> str:
        if not is_edge(info):
            return value
        if len(value) > max_length:
            raise ValueError(f"at most {max_length} characters (got {len(value)})")
        allowed = {"\n", "\t", "\r"} if multiline else set()
        if any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
            raise ValueError("must not contain control characters")
        return value

    return check


ID_RULE = "must be 1 to 64 characters: ASCII letters, digits, _ . : -"


def is_id(value: object) -> bool:
    """1-64 ASCII letters, digits or `_ . : -`: fits every id column of the case store."""
    return isinstance(value, str) and len(value) <= 64 and bool(_ID.match(value))


def checked_id(value: str, info: ValidationInfo) -> str:
    """Ids (appointment, client, therapist, staff): at the edge 1-64 ASCII letters, digits or
    `_ . : -`, so they fit the store's columns and are safe in a workflow id."""
    if is_edge(info) and not is_id(value):
        raise ValueError(ID_RULE)
    return value


def check_ids(**ids: str | None) -> None:
    """Ids given as plain arguments (a CLI argument, a lookup by id), checked before they reach
    the store or Temporal: an EdgeError naming every bad one (None: not given)."""
    bad = [name for name, value in ids.items() if value is not None and not is_id(value)]
    if bad:
        raise EdgeError("; ".join(f"{name}: {ID_RULE}" for name in bad))
