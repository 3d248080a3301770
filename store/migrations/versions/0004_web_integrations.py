"""Web service: integrations (hashed bearer tokens) and their events, inbound texts, handled
webhook requests (replays are refused), email addresses that bounced.

Revision ID: 0004_web_integrations
Revises: 0003_calendar_sweep_state
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_web_integrations"
down_revision: str | None = "0003_calendar_sweep_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("integration_id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_table(
        "integration_events",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("effect", sa.String(300), nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
        sa.UniqueConstraint("effect"),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("message_sid", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_number", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("therapist_id", sa.String(64), nullable=True),
        sa.Column("case_id", sa.String(200), nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("message_sid"),
    )
    op.create_index("ix_inbound_messages_from_number", "inbound_messages", ["from_number"])
    op.create_index("ix_inbound_messages_client_id", "inbound_messages", ["client_id"])
    op.create_table(
        "webhook_receipts",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_webhook_receipts_received_at", "webhook_receipts", ["received_at"])
    op.create_table(
        "email_suppressions",
        sa.Column("address", sa.String(254), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )


def downgrade() -> None:
    op.drop_table("email_suppressions")
    op.drop_index("ix_webhook_receipts_received_at", table_name="webhook_receipts")
    op.drop_table("webhook_receipts")
    op.drop_index("ix_inbound_messages_client_id", table_name="inbound_messages")
    op.drop_index("ix_inbound_messages_from_number", table_name="inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_table("integration_events")
    op.drop_table("integrations")
