"""CaseStore: every read and write of the case store, each write idempotent by key.

Upserts use the dialect's `INSERT ... ON CONFLICT` so a retried or replayed activity changes
nothing twice, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

from models.case import (
    Attempt,
    AttemptResult,
    NoteEntry,
    Purpose,
    RecipientRole,
    Resolution,
    Stage,
)
from models.directory import Channel, ClientProfile, Therapist
from models.outreach import NoteRecord, OpenCaseRequest, OutreachRequest, StageChange
from store.schema import (
    AttemptTable,
    AttendanceTable,
    Base,
    CaseTable,
    ClientTable,
    NoteTable,
    ResolutionTable,
    TherapistTable,
)

AttemptState = Literal["sending", "retry", "accepted", "done"]


class CaseRow(BaseModel):
    case_id: str
    appointment_id: str
    client_id: str
    therapist_id: str
    scheduled_start: datetime
    policy_name: str
    stage: Stage
    stage_since: datetime
    opened_at: datetime
    closed_at: datetime | None
    outcome: str | None


class AttemptRow(BaseModel):
    key: str
    case_id: str
    step: str
    channel: Channel
    recipient_role: RecipientRole
    purpose: Purpose
    round: int | None
    state: AttemptState
    provider_id: str | None
    result: AttemptResult | None
    detail: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None

    def as_attempt(self) -> Attempt:
        return Attempt(
            step=self.step,
            channel=self.channel,
            recipient_role=self.recipient_role,
            purpose=self.purpose,
            round=self.round,
            at=self.started_at,
            result=self.result or AttemptResult.unconfirmed,
            detail=self.detail,
            provider_id=self.provider_id,
            dry_run=self.dry_run,
        )


class CaseStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> CaseStore:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return cls(create_async_engine(url))

    async def create_schema(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    async def close(self) -> None:
        await self._engine.dispose()

    def _insert(self, table: type[Base]) -> Any:
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    # ------------------------------------------------------------------ directory
    async def import_directory(
        self, therapists: list[Therapist], clients: list[ClientProfile]
    ) -> None:
        """Upsert all records in one transaction: all or nothing."""
        async with self._sessions.begin() as session:
            for t in therapists:
                stmt = self._insert(TherapistTable).values(
                    therapist_id=t.therapist_id, record=t.model_dump(mode="json")
                )
                await session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["therapist_id"], set_={"record": stmt.excluded.record}
                    )
                )
            for c in clients:
                stmt = self._insert(ClientTable).values(
                    client_id=c.client_id,
                    therapist_id=c.therapist_id,
                    record=c.model_dump(mode="json"),
                )
                await session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["client_id"],
                        set_={
                            "record": stmt.excluded.record,
                            "therapist_id": stmt.excluded.therapist_id,
                        },
                    )
                )

    async def get_client(self, client_id: str) -> ClientProfile | None:
        async with self._sessions() as session:
            row = await session.get(ClientTable, client_id)
            return ClientProfile.model_validate(row.record) if row else None

    async def get_therapist(self, therapist_id: str) -> Therapist | None:
        async with self._sessions() as session:
            row = await session.get(TherapistTable, therapist_id)
            return Therapist.model_validate(row.record) if row else None

    async def therapist_ids(self) -> set[str]:
        async with self._sessions() as session:
            return set((await session.scalars(select(TherapistTable.therapist_id))).all())

    async def client_ids(self) -> set[str]:
        async with self._sessions() as session:
            return set((await session.scalars(select(ClientTable.client_id))).all())

    # ------------------------------------------------------------------ cases
    async def open_case(self, request: OpenCaseRequest) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                self._insert(CaseTable)
                .values(
                    case_id=request.case_id,
                    appointment_id=request.appointment_id,
                    client_id=request.client_id,
                    therapist_id=request.therapist_id,
                    scheduled_start=request.scheduled_start,
                    policy_name=request.policy_name,
                    stage=Stage.grace_wait.value,
                    stage_since=request.opened_at,
                    opened_at=request.opened_at,
                )
                .on_conflict_do_nothing()
            )

    async def set_stage(self, change: StageChange) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(CaseTable)
                .where(CaseTable.case_id == change.case_id, CaseTable.stage != change.stage.value)
                .values(stage=change.stage.value, stage_since=change.at)
            )

    async def get_case(self, case_id: str) -> CaseRow | None:
        async with self._sessions() as session:
            row = await session.get(CaseTable, case_id)
            return _case_row(row) if row else None

    async def list_cases(self, open_only: bool = True) -> list[CaseRow]:
        query = select(CaseTable).order_by(CaseTable.opened_at)
        if open_only:
            query = query.where(CaseTable.closed_at.is_(None))
        async with self._sessions() as session:
            return [_case_row(r) for r in (await session.scalars(query)).all()]

    # ------------------------------------------------------------------ attempts
    async def get_attempt(self, key: str) -> AttemptRow | None:
        async with self._sessions() as session:
            row = await session.get(AttemptTable, key)
            return _attempt_row(row) if row else None

    async def start_attempt(self, request: OutreachRequest, at: datetime) -> AttemptRow:
        """Write the row before the provider is called (state `sending`)."""
        async with self._sessions.begin() as session:
            stmt = self._insert(AttemptTable).values(
                key=request.key,
                case_id=request.case_id,
                step=request.step,
                channel=request.channel.value,
                recipient_role=request.recipient_role.value,
                purpose=request.purpose.value,
                round=request.round,
                state="sending",
                detail="",
                dry_run=False,
                started_at=at,
            )
            await session.execute(
                stmt.on_conflict_do_update(index_elements=["key"], set_={"state": "sending"})
            )
        row = await self.get_attempt(request.key)
        assert row is not None
        return row

    async def _set_attempt(self, key: str, **values: Any) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(AttemptTable)
                .where(AttemptTable.key == key, AttemptTable.state != "done")
                .values(**values)
            )

    async def mark_accepted(self, key: str, provider_id: str | None) -> None:
        await self._set_attempt(key, state="accepted", provider_id=provider_id)

    async def mark_retryable(self, key: str, detail: str) -> None:
        await self._set_attempt(key, state="retry", detail=detail)

    async def finish_attempt(
        self,
        key: str,
        result: AttemptResult,
        detail: str,
        provider_id: str | None,
        dry_run: bool,
        at: datetime,
    ) -> Attempt:
        """Record the final result; a row already final is returned unchanged."""
        await self._set_attempt(
            key,
            state="done",
            result=result.value,
            detail=detail,
            provider_id=provider_id,
            dry_run=dry_run,
            finished_at=at,
        )
        row = await self.get_attempt(key)
        assert row is not None, f"attempt {key} was never started"
        return row.as_attempt()

    async def attempts_for_case(self, case_id: str) -> list[Attempt]:
        query = (
            select(AttemptTable)
            .where(AttemptTable.case_id == case_id, AttemptTable.state == "done")
            .order_by(AttemptTable.finished_at, AttemptTable.started_at)
        )
        async with self._sessions() as session:
            return [_attempt_row(r).as_attempt() for r in (await session.scalars(query)).all()]

    # ------------------------------------------------------------------ notes
    async def add_note(self, record: NoteRecord) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                self._insert(NoteTable)
                .values(
                    key=record.key,
                    case_id=record.case_id,
                    at=record.entry.at,
                    author=record.entry.author,
                    text=record.entry.text,
                )
                .on_conflict_do_nothing()
            )

    async def notes_for_case(self, case_id: str) -> list[NoteEntry]:
        query = select(NoteTable).where(NoteTable.case_id == case_id).order_by(NoteTable.at)
        async with self._sessions() as session:
            return [
                NoteEntry(at=n.at, author=n.author, text=n.text)
                for n in (await session.scalars(query)).all()
            ]

    # ------------------------------------------------------------------ attendance
    async def record_attendance(
        self, appointment_id: str, client_id: str, scheduled_start: datetime, status: str
    ) -> None:
        async with self._sessions.begin() as session:
            stmt = self._insert(AttendanceTable).values(
                appointment_id=appointment_id,
                client_id=client_id,
                scheduled_start=scheduled_start,
                status=status,
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["appointment_id"], set_={"status": stmt.excluded.status}
                )
            )

    async def missed_sessions(
        self, client_id: str, since: datetime, until: datetime
    ) -> list[datetime]:
        query = (
            select(AttendanceTable.scheduled_start)
            .where(
                AttendanceTable.client_id == client_id,
                AttendanceTable.status == "no_show",
                AttendanceTable.scheduled_start >= since,
                AttendanceTable.scheduled_start <= until,
            )
            .order_by(AttendanceTable.scheduled_start)
        )
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())

    # ------------------------------------------------------------------ resolutions
    async def save_resolution(self, resolution: Resolution) -> None:
        """Keep the documented resolution and mark the case closed, in one transaction."""
        async with self._sessions.begin() as session:
            stmt = self._insert(ResolutionTable).values(
                case_id=resolution.case_id,
                recorded_at=resolution.closed_at,
                document=resolution.model_dump(mode="json"),
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["case_id"], set_={"document": stmt.excluded.document}
                )
            )
            await session.execute(
                update(CaseTable)
                .where(CaseTable.case_id == resolution.case_id)
                .values(
                    stage=Stage.closed.value,
                    stage_since=resolution.closed_at,
                    closed_at=resolution.closed_at,
                    outcome=resolution.outcome.value,
                )
            )

    async def get_resolution(self, case_id: str) -> Resolution | None:
        async with self._sessions() as session:
            row = await session.get(ResolutionTable, case_id)
            return Resolution.model_validate(row.document) if row else None


def _case_row(row: CaseTable) -> CaseRow:
    return CaseRow.model_validate(row, from_attributes=True)


def _attempt_row(row: AttemptTable) -> AttemptRow:
    return AttemptRow.model_validate(row, from_attributes=True)


def utc_now() -> datetime:
    return datetime.now(UTC)
