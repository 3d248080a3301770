"""Calendar sweep: when a cancellation was first seen (its lateness is decided once), and when
a session with an open case first went missing from a complete read.

Revision ID: 0003_calendar_sweep_state
Revises: 0002_calendar
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_calendar_sweep_state"
down_revision: str | None = "0002_calendar"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calendar_sessions") as table:
        table.add_column(sa.Column("cancellation_seen_at", sa.DateTime(timezone=True)))
        table.add_column(sa.Column("absent_since", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("calendar_sessions") as table:
        table.drop_column("absent_since")
        table.drop_column("cancellation_seen_at")
