"""The case store's calendar tables: the sources the sweep reads, and what the sweep did about
each session it saw (so a sweep run twice, or after downtime, does nothing twice).

A mixin of `CaseStore` (it uses the store's transactions and dialect upserts)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import case, delete, func, select, update
from sqlalchemy.engine import RowMapping

from models.calendar import CalendarSource, KnownSession
from store.errors import stored
from store.schema import (
    AttendanceTable,
    CalendarSessionTable,
    CalendarSourceTable,
    CaseTable,
    ClientTable,
)
from store.threads import StoreConnection

_SESSION_FLAGS = (
    "case_opened_at",
    "opened_late_seconds",
    "arrival_reported_at",
    "cancellation_reported_at",
    "late_cancellation_at",
    "cancellation_seen_at",
)


_SESSION_ID = CalendarSessionTable.appointment_id


class SourceRow(BaseModel):
    """A calendar source as the store keeps it (the secret stays encrypted)."""

    source: CalendarSource
    has_secret: bool
    created_at: datetime
    last_read_at: datetime | None
    swept_until: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    last_summary: str | None


class CalendarRecords:
    _begin: Callable[[], AbstractAsyncContextManager[StoreConnection]]
    _insert: Callable[[Any], Any]
    _first: Callable[..., Any]
    _all: Callable[..., Any]

    # ------------------------------------------------------------------ sources
    async def save_source(
        self, source: CalendarSource, encrypted_secret: str | None, now: datetime
    ) -> None:
        """Add a source, or replace its settings (its read history is kept)."""
        stmt = self._insert(CalendarSourceTable).values(
            source_id=source.source_id,
            config=source.model_dump(mode="json"),
            secret=encrypted_secret,
            created_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["source_id"],
            set_={"config": stmt.excluded.config, "secret": stmt.excluded.secret},
        )
        async with self._begin() as conn:
            await conn.execute(stmt)

    async def remove_source(self, source_id: str) -> bool:
        async with self._begin() as conn:
            result = await conn.execute(
                delete(CalendarSourceTable).where(CalendarSourceTable.source_id == source_id)
            )
        return bool(result.rowcount)

    async def list_sources(self) -> list[SourceRow]:
        query = select(CalendarSourceTable).order_by(CalendarSourceTable.source_id)
        return [_source_row(r) for r in await self._all(query)]

    async def get_source(self, source_id: str) -> SourceRow | None:
        query = select(CalendarSourceTable).where(CalendarSourceTable.source_id == source_id)
        row = await self._first(query)
        return _source_row(row) if row else None

    async def source_secret(self, source_id: str) -> str | None:
        """The encrypted secret (decrypt it with `store.secrets.SecretBox`)."""
        query = select(CalendarSourceTable.secret).where(CalendarSourceTable.source_id == source_id)
        row = await self._first(query)
        return row["secret"] if row else None

    async def record_read(
        self,
        source_id: str,
        at: datetime,
        *,
        swept_until: datetime | None = None,
        summary: str | None = None,
        error: str | None = None,
    ) -> None:
        """A sweep of the source: a successful read moves `last_read_at` and `swept_until`; a
        failed one keeps them (so `status` shows how stale the source is) and notes the error."""
        values: dict[str, Any] = (
            {"last_error": error, "last_error_at": at}
            if error is not None
            else {"last_read_at": at, "swept_until": swept_until, "last_summary": summary}
        )
        async with self._begin() as conn:
            await conn.execute(
                update(CalendarSourceTable)
                .where(CalendarSourceTable.source_id == source_id)
                .values(**values)
            )

    # ------------------------------------------------------------------ sessions
    async def known_sessions(self, appointment_ids: Iterable[str]) -> dict[str, KnownSession]:
        """What was done before about these sessions, and whether each one's case is open."""
        ids = sorted(set(appointment_ids))
        known: dict[str, KnownSession] = {}
        for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
            query = (
                select(
                    CalendarSessionTable,
                    CaseTable.closed_at,
                    CaseTable.case_id,
                    CaseTable.client_id,
                )
                .outerjoin(
                    CaseTable, CaseTable.appointment_id == CalendarSessionTable.appointment_id
                )
                .where(CalendarSessionTable.appointment_id.in_(chunk))
            )
            for row in await self._all(query):
                known[row["appointment_id"]] = KnownSession(
                    appointment_id=row["appointment_id"],
                    client_id=row["client_id"],
                    case_opened=row["case_opened_at"] is not None,
                    case_open=row["case_id"] is not None and row["closed_at"] is None,
                    scheduled_start=row["scheduled_start"],
                    arrival_reported=row["arrival_reported_at"] is not None,
                    cancellation_reported=row["cancellation_reported_at"] is not None,
                    late_cancellation_recorded=row["late_cancellation_at"] is not None,
                    cancellation_seen=row["cancellation_seen_at"] is not None,
                    absent_since=row["absent_since"],
                )
        return known

    async def open_calendar_sessions(
        self, source_id: str, since: datetime, until: datetime
    ) -> list[str]:
        """Appointment ids of this source's sessions in [since, until] whose case is open."""
        query = (
            select(CalendarSessionTable.appointment_id)
            .join(CaseTable, CaseTable.appointment_id == _SESSION_ID)
            .where(
                CalendarSessionTable.source_id == source_id,
                CalendarSessionTable.scheduled_start >= since,
                CalendarSessionTable.scheduled_start <= until,
                CaseTable.closed_at.is_(None),
            )
        )
        return [r["appointment_id"] for r in await self._all(query)]

    async def calendar_case_at(
        self, source_id: str, client_id: str, scheduled_start: datetime
    ) -> str | None:
        """The case this source opened for this client's session at this start, if any: a
        series edited in the calendar gives the same session a new appointment id."""
        query = select(CaseTable.case_id).where(
            CaseTable.client_id == client_id,
            CaseTable.scheduled_start == scheduled_start,
            CaseTable.appointment_id.startswith(f"cal.{source_id}.", autoescape=True),
        )
        row = await self._first(query)
        return row["case_id"] if row else None

    async def client_ids_by_email(self) -> tuple[dict[str, str], frozenset[str]]:
        """Client id by lower-cased email, for calendars that name clients as attendees, and
        the emails several clients share (a family address): those name no one."""
        rows = await self._all(select(ClientTable.client_id, ClientTable.record))
        owners: dict[str, set[str]] = {}
        for r in rows:
            email = r["record"].get("email")
            if email:
                owners.setdefault(str(email).strip().casefold(), set()).add(r["client_id"])
        ids = {email: next(iter(ids)) for email, ids in owners.items() if len(ids) == 1}
        return ids, frozenset(email for email, ids in owners.items() if len(ids) > 1)

    async def mark_session(
        self, appointment_id: str, source_id: str, scheduled_start: datetime, **flags: Any
    ) -> None:
        """Record what the sweep did (`case_opened_at`, `arrival_reported_at`, ...); a flag
        already set keeps its first value. The row's `scheduled_start` is the start its case
        was opened for: a row written before (a late cancellation, later undone and the
        session moved) takes the start of the case when one opens."""
        unknown = set(flags) - set(_SESSION_FLAGS)
        if unknown:
            raise ValueError(f"unknown session flags {sorted(unknown)}")
        stmt = self._insert(CalendarSessionTable).values(
            appointment_id=appointment_id,
            source_id=source_id,
            scheduled_start=scheduled_start,
            **flags,
        )
        table = CalendarSessionTable.__table__
        if flags:
            first_values: dict[str, Any] = {
                name: func.coalesce(table.c[name], stmt.excluded[name]) for name in flags
            }
            if "case_opened_at" in flags:
                first_values["scheduled_start"] = case(
                    (table.c.case_opened_at.is_(None), stmt.excluded.scheduled_start),
                    else_=table.c.scheduled_start,
                )
            stmt = stmt.on_conflict_do_update(index_elements=["appointment_id"], set_=first_values)
        else:
            stmt = stmt.on_conflict_do_nothing()
        async with self._begin() as conn:
            await conn.execute(stmt)

    async def forget_cancellation(self, appointment_id: str) -> None:
        """The session is back in the calendar: a late cancellation recorded for it is void
        (one transaction: the attendance row and the sweep's mark go together). If a case was
        opened for it meanwhile, the row goes back to the case's no-show, not away."""
        late = (
            AttendanceTable.appointment_id == appointment_id,
            AttendanceTable.status == "late_cancelled",
        )
        has_case = select(CaseTable.case_id).where(CaseTable.appointment_id == appointment_id)
        async with self._begin() as conn:
            if (await conn.execute(has_case)).first() is not None:
                await conn.execute(update(AttendanceTable).where(*late).values(status="no_show"))
            else:
                await conn.execute(delete(AttendanceTable).where(*late))
            await conn.execute(
                update(CalendarSessionTable)
                .where(_SESSION_ID == appointment_id)
                .values(cancellation_seen_at=None, late_cancellation_at=None)
            )

    async def set_absence(self, appointment_id: str, since: datetime | None) -> None:
        """A complete read missed this session (`since`), or found it again (None)."""
        async with self._begin() as conn:
            await conn.execute(
                update(CalendarSessionTable)
                .where(_SESSION_ID == appointment_id)
                .values(absent_since=since)
            )


def _source_row(row: RowMapping) -> SourceRow:
    return SourceRow(
        source=stored(CalendarSource, row["config"]),
        has_secret=row["secret"] is not None,
        created_at=row["created_at"],
        last_read_at=row["last_read_at"],
        swept_until=row["swept_until"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        last_summary=row["last_summary"],
    )
