"""The statements a case sends for every message and stage change, built once, run with values.

A statement built per call costs SQLAlchemy more Python than running it does: it is constructed
(each value coerced against its column), then walked to compute its cache key, on every call.
Built once with bind parameters and executed with a dict of values, both are skipped (SQLAlchemy
memoises a statement's cache key on the statement). A message's claim and result cost 45% less
CPU this way, measured with `python -m bench.store_statements` on 2 cores: 1.7 -> 0.9 ms on
PostgreSQL, 2.6 -> 1.4 ms on SQLite when it still ran through aiosqlite (`store/threads.py`
since took it to 0.8).

The values of an INSERT, and the SET of an UPDATE, come from the keys of the dict it is run with;
bind parameters in WHERE clauses are named `b_...`, apart from the columns they compare with.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Insert, Table, Update, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from store.schema import AttemptTable, CaseTable, ClientTable, EmailSuppressionTable, TherapistTable

Upsert = sqlite.Insert | postgresql.Insert
UPSERTS: dict[str, Callable[[Any], Upsert]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}

_attempts = cast(Table, AttemptTable.__table__)
_cases = cast(Table, CaseTable.__table__)

CLIENT = select(ClientTable.__table__.c.record).where(
    ClientTable.__table__.c.client_id == bindparam("b_id")
)
THERAPIST = select(TherapistTable.__table__.c.record).where(
    TherapistTable.__table__.c.therapist_id == bindparam("b_id")
)
EMAIL_SUPPRESSION = select(EmailSuppressionTable.__table__.c.reason).where(
    EmailSuppressionTable.__table__.c.address == bindparam("b_address")
)
ATTEMPTS = select(_attempts).where(_attempts.c.key.in_(bindparam("b_keys", expanding=True)))

# A send's claim on a row seen before: only if the row is still as this try saw it.
CLAIM_AGAIN: Update = (
    update(_attempts)
    .where(
        _attempts.c.key == bindparam("b_key"),
        _attempts.c.state == bindparam("b_seen_state"),
        _attempts.c.state.in_(("sending", "retry")),
        _attempts.c.claim.is_not_distinct_from(bindparam("b_seen_claim")),
    )
    .returning(_attempts.c.key)
)
# An attempt's final result, unless it has one; RETURNING the row as written.
FINISH: Update = (
    update(_attempts)
    .where(_attempts.c.key == bindparam("b_key"), _attempts.c.state != "done")
    .returning(_attempts)
)
# A case's stage, unless it is in it already (keeping its first `stage_since`) or closed.
STAGE: Update = update(_cases).where(
    _cases.c.case_id == bindparam("b_case_id"),
    _cases.c.stage != bindparam("b_stage"),
    _cases.c.closed_at.is_(None),
)


@dataclass(frozen=True)
class Inserts:
    """The dialect's own upserts (SQLite's and PostgreSQL's `ON CONFLICT` differ in SQLAlchemy)."""

    claim_new: Insert  # a send's claim on a message with no row yet: RETURNING its key
    attempt: Insert  # a finished attempt's row where none was written: RETURNING the row
    case: Insert  # a new case, unless recorded


@functools.cache
def inserts(dialect: str) -> Inserts:
    insert = UPSERTS[dialect]
    new_attempt = insert(_attempts).on_conflict_do_nothing(index_elements=["key"])
    return Inserts(
        claim_new=new_attempt.returning(_attempts.c.key),
        attempt=new_attempt.returning(_attempts),
        case=insert(_cases).on_conflict_do_nothing(),
    )


__all__ = [
    "ATTEMPTS",
    "CLAIM_AGAIN",
    "CLIENT",
    "EMAIL_SUPPRESSION",
    "FINISH",
    "STAGE",
    "THERAPIST",
    "UPSERTS",
    "Inserts",
    "Upsert",
    "inserts",
]
