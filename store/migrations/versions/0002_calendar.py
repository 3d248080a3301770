"""Calendar sweep: the calendars it reads and what it did about each session.

Revision ID: 0002_calendar
Revises: 0001_baseline
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_calendar"
down_revision: str | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_sources",
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("swept_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_summary", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("source_id"),
    )
    op.create_table(
        "calendar_sessions",
        sa.Column("appointment_id", sa.String(200), nullable=False),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("scheduled_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("case_opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_late_seconds", sa.Integer(), nullable=True),
        sa.Column("arrival_reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancellation_reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("late_cancellation_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("appointment_id"),
    )
    op.create_index("ix_calendar_sessions_source_id", "calendar_sessions", ["source_id"])


def downgrade() -> None:
    op.drop_index("ix_calendar_sessions_source_id", table_name="calendar_sessions")
    op.drop_table("calendar_sessions")
    op.drop_table("calendar_sources")
