"""The case store's tables (SQLAlchemy 2 declarative), identical on SQLite and PostgreSQL.

Every datetime column is a `UtcDateTime`: written as UTC, read back timezone-aware in UTC on both
backends. (PostgreSQL keeps the zone in `timestamptz`; SQLite has no time zones, so the value is
stored as naive UTC text, which still sorts and compares correctly, and re-labelled on read.)

Directory records are kept whole as JSON: the pydantic models in `models.directory` are the
contract, and nesting (consent, the emergency contact) round-trips without a table per level.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Dialect, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class NaiveDateTimeError(ValueError):
    """A naive datetime reached the store: a bug in the caller (its message quotes nothing)."""


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime column that never hands back a naive value."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # Guessing a zone here would silently shift a session by hours.
            raise NaiveDateTimeError("the case store only accepts timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class TherapistTable(Base):
    """PHI: `record` is a `models.directory.Therapist`."""

    __tablename__ = "therapists"
    therapist_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)


class ClientTable(Base):
    """PHI: `record` is a `models.directory.ClientProfile`, emergency contact included."""

    __tablename__ = "clients"
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    therapist_id: Mapped[str | None] = mapped_column(String(64), index=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)


class CaseTable(Base):
    """One row per missed session, mirrored from the workflow for listings and reports."""

    __tablename__ = "cases"
    case_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    appointment_id: Mapped[str] = mapped_column(String(200), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    therapist_id: Mapped[str] = mapped_column(String(64), index=True)
    scheduled_start: Mapped[datetime] = mapped_column(UtcDateTime)
    policy_name: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(40))  # models.case.Stage
    stage_since: Mapped[datetime] = mapped_column(UtcDateTime)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String(60))  # models.answers.CaseOutcome


class AttemptTable(Base):
    """One row per message, keyed "<case_id>/<step>", written before the provider is called so
    a retried activity can tell whether a message may already have gone out."""

    __tablename__ = "attempts"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(200), index=True)
    step: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(10))
    recipient_role: Mapped[str] = mapped_column(String(30))
    purpose: Mapped[str] = mapped_column(String(40))
    round: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10))  # sending | retry | accepted | done
    # Which try of the activity may call the provider: the one whose token is here while the
    # row is `sending`. Two tries at once (one timed out but still running) cannot both send.
    claim: Mapped[str | None] = mapped_column(String(200))
    provider_id: Mapped[str | None] = mapped_column(String(100))
    result: Mapped[str | None] = mapped_column(String(30))  # models.case.AttemptResult
    detail: Mapped[str] = mapped_column(Text, default="")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class NoteTable(Base):
    __tablename__ = "notes"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # e.g. "<case>/note/3"
    case_id: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)


class AttendanceTable(Base):
    """Attendance history, one row per appointment, for the missed-session pattern review."""

    __tablename__ = "attendance"
    appointment_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    scheduled_start: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(20))  # no_show | attended_late | attended


class ResolutionTable(Base):
    """The documented resolution (`models.case.Resolution` as JSON), kept after Temporal's
    retention has removed the workflow history."""

    __tablename__ = "resolutions"
    case_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)  # the case's closed_at
    document: Mapped[dict[str, Any]] = mapped_column(JSON)


class CalendarSourceTable(Base):
    """A practice calendar the sweep reads (`models.calendar.CalendarSource` as JSON). A
    CalDAV password is in `secret`, encrypted with the practice's secrets key (kept outside
    the database), so a dump of the database alone does not reveal it."""

    __tablename__ = "calendar_sources"
    source_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    secret: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_read_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # last successful read
    swept_until: Mapped[datetime | None] = mapped_column(UtcDateTime)  # end of the last window
    last_error: Mapped[str | None] = mapped_column(Text)  # never quotes the feed
    last_error_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_summary: Mapped[str | None] = mapped_column(Text)  # what the last sweep did


class CalendarSessionTable(Base):
    """What the sweep did about one calendar session, so a sweep run again does nothing twice
    (case opening itself is once per appointment through the workflow id)."""

    __tablename__ = "calendar_sessions"
    appointment_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(64), index=True)
    scheduled_start: Mapped[datetime] = mapped_column(UtcDateTime)
    case_opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    opened_late_seconds: Mapped[int | None] = mapped_column(Integer)
    arrival_reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancellation_reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    late_cancellation_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When a sweep first saw the session cancelled: its lateness is decided then, once.
    cancellation_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When a complete read first missed a session whose case is open (deleted or moved out of
    # the window?): reported cancelled only if the next complete read misses it too.
    absent_since: Mapped[datetime | None] = mapped_column(UtcDateTime)


class IntegrationTable(Base):
    """A practice-management system or EHR allowed to report events (`POST /api/v1/events`).
    Only the SHA-256 of its bearer token is kept: the token is printed once, when it is added."""

    __tablename__ = "integrations"
    integration_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IntegrationEventTable(Base):
    """Each event an integration reported, by its own event id, and what it did: the same event
    again answers the same and changes nothing. `effect` ("checked_in/<appointment>") makes a
    second event with another id but the same meaning a no-op too."""

    __tablename__ = "integration_events"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "<integration>/<event id>"
    effect: Mapped[str | None] = mapped_column(String(300), unique=True)
    state: Mapped[str] = mapped_column(String(10))  # pending | done
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class InboundMessageTable(Base):
    """PHI: every text a client (or anyone) sent to the practice's number, by Twilio's
    MessageSid, with what was done about it. A MessageSid already `done` is a replay."""

    __tablename__ = "inbound_messages"
    message_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    from_number: Mapped[str] = mapped_column(String(32), index=True)
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))  # reply | stop | start | help
    client_id: Mapped[str | None] = mapped_column(String(64), index=True)
    therapist_id: Mapped[str | None] = mapped_column(String(64))
    case_id: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(10))  # received | done
    outcome: Mapped[str] = mapped_column(Text, default="")


class WebhookReceiptTable(Base):
    """A signed provider request already handled (a Twilio call-status callback, a SendGrid
    event batch): the same request again is a replay, refused with 403."""

    __tablename__ = "webhook_receipts"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class EmailSuppressionTable(Base):
    """PHI: an email address that bounced, was dropped or reported our mail as spam (SendGrid's
    event webhook): later messages to it are skipped, recorded with the reason."""

    __tablename__ = "email_suppressions"
    address: Mapped[str] = mapped_column(String(254), primary_key=True)  # lower-cased
    reason: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
