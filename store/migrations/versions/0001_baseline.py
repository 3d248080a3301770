"""Baseline: the case store as it was before migrations (directory, cases, attempts, notes,
attendance, resolutions).

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-01

Every datetime column is `store.schema.UtcDateTime`, whose DDL is `DateTime(timezone=True)`
(the decorator only converts values). Indexes carry SQLAlchemy's default names, as
`index=True` made them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_baseline"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "therapists",
        sa.Column("therapist_id", sa.String(64), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("therapist_id"),
    )
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("therapist_id", sa.String(64), nullable=True),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
    )
    op.create_index("ix_clients_therapist_id", "clients", ["therapist_id"])
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("appointment_id", sa.String(200), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("therapist_id", sa.String(64), nullable=False),
        sa.Column("scheduled_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("policy_name", sa.String(100), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        sa.Column("stage_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(60), nullable=True),
        sa.PrimaryKeyConstraint("case_id"),
        sa.UniqueConstraint("appointment_id"),
    )
    op.create_index("ix_cases_client_id", "cases", ["client_id"])
    op.create_index("ix_cases_therapist_id", "cases", ["therapist_id"])
    op.create_table(
        "attempts",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("step", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("recipient_role", sa.String(30), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("round", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("claim", sa.String(200), nullable=True),
        sa.Column("provider_id", sa.String(100), nullable=True),
        sa.Column("result", sa.String(30), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_attempts_case_id", "attempts", ["case_id"])
    op.create_table(
        "notes",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_notes_case_id", "notes", ["case_id"])
    op.create_table(
        "attendance",
        sa.Column("appointment_id", sa.String(200), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("scheduled_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("appointment_id"),
    )
    op.create_index("ix_attendance_client_id", "attendance", ["client_id"])
    op.create_table(
        "resolutions",
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
    )


def downgrade() -> None:
    op.drop_table("resolutions")
    op.drop_index("ix_attendance_client_id", table_name="attendance")
    op.drop_table("attendance")
    op.drop_index("ix_notes_case_id", table_name="notes")
    op.drop_table("notes")
    op.drop_index("ix_attempts_case_id", table_name="attempts")
    op.drop_table("attempts")
    op.drop_index("ix_cases_therapist_id", table_name="cases")
    op.drop_index("ix_cases_client_id", table_name="cases")
    op.drop_table("cases")
    op.drop_index("ix_clients_therapist_id", table_name="clients")
    op.drop_table("clients")
    op.drop_table("therapists")
