"""Alembic environment of the case store, run by `CaseStore.create_schema()`.

The store hands over an open SQLAlchemy *sync* connection in `config.attributes["connection"]`
(from `AsyncConnection.run_sync`), and the migrations run in its transaction. There is no
alembic.ini and no offline mode: `store.migrations.alembic_config` builds the Config in code.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from store.schema import Base

config = context.config
connection = config.attributes.get("connection")
if context.is_offline_mode() or not isinstance(connection, Connection):
    raise RuntimeError(
        "the case store's migrations run on a connection: use CaseStore.create_schema() "
        "(starter.py setup)"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,  # what head must equal (tests/test_migrations.py)
    render_as_batch=True,  # SQLite has almost no ALTER TABLE: batch mode copies the table
)
with context.begin_transaction():
    context.run_migrations()
