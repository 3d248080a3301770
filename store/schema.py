"""Tables. Datetimes are stored timezone-aware and always read back as UTC (SQLite drops tzinfo)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the case store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class TherapistTable(Base):
    __tablename__ = "therapists"
    therapist_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # models.directory.Therapist


class ClientTable(Base):
    __tablename__ = "clients"
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    therapist_id: Mapped[str | None] = mapped_column(String(64), index=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # models.directory.ClientProfile


class CaseTable(Base):
    __tablename__ = "cases"
    case_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    appointment_id: Mapped[str] = mapped_column(String(200), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    therapist_id: Mapped[str] = mapped_column(String(64), index=True)
    scheduled_start: Mapped[datetime] = mapped_column(UtcDateTime)
    policy_name: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(40))
    stage_since: Mapped[datetime] = mapped_column(UtcDateTime)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String(60))


class AttemptTable(Base):
    __tablename__ = "attempts"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(200), index=True)
    step: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(10))
    recipient_role: Mapped[str] = mapped_column(String(30))
    purpose: Mapped[str] = mapped_column(String(40))
    round: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10))  # sending | retry | accepted | done
    provider_id: Mapped[str | None] = mapped_column(String(100))
    result: Mapped[str | None] = mapped_column(String(30))
    detail: Mapped[str] = mapped_column(Text, default="")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class NoteTable(Base):
    __tablename__ = "notes"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)


class AttendanceTable(Base):
    __tablename__ = "attendance"
    appointment_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    scheduled_start: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(20))  # no_show | attended_late | attended


class ResolutionTable(Base):
    __tablename__ = "resolutions"
    case_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # models.case.Resolution
