"""The case store's schema history: an Alembic environment kept inside the package.

`CaseStore.create_schema()` runs it (`upgrade`): there is no alembic.ini, the `Config` is built
here. A new migration is a copy of the newest file in `versions/` with a new `revision` and
`down_revision` set to the previous one; `tests/test_migrations.py` fails until the migrated
schema matches `store.schema`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

BASELINE = "0001_baseline"

# Stores made before migrations existed (`metadata.create_all`, no `alembic_version` table), by
# the revision whose tables they already hold, newest first. The calendar tables were created by
# create_all for one commit before they had a migration.
_PRE_ALEMBIC = (
    ("0002_calendar", {"calendar_sources", "calendar_sessions"}),
    (BASELINE, {"cases"}),
)

# Two processes starting at once (several workers, a command of starter.py) must not both
# migrate: the second waits for the first, then finds the schema at head. PostgreSQL: this
# transaction-level advisory lock; SQLite: the database's write lock, taken at once.
_POSTGRES_LOCK_KEY = 0x6F75747265616368  # "outreach"


def alembic_config(connection: Connection | None = None) -> Config:
    """The environment's Config, set to run on `connection` (a sync connection, e.g. the one
    `AsyncConnection.run_sync` hands over), in its transaction."""
    config = Config()
    # ConfigParser interpolates "%": a path that contains one must escape it.
    config.set_main_option("script_location", str(Path(__file__).parent).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Create or upgrade the store's schema to `revision`. A store made before migrations
    existed is stamped with the revision it already has first, so its tables are kept."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_LOCK_KEY})
    elif connection.dialect.name == "sqlite" and _driver_begins(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # the driver has not begun one yet
    config = alembic_config(connection)
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables:
        if "attempts" in tables:
            _add_claim_column(connection)
        for existing, needs in _PRE_ALEMBIC:
            if needs <= tables:
                command.stamp(config, existing)
                break
    command.upgrade(config, revision)


def _driver_begins(connection: Connection) -> bool:
    """True on a plain SQLite engine: the driver begins its transactions lazily, at the
    first write. The store's own engine has begun this one IMMEDIATE already (`store.sqlite`)."""
    dbapi_connection = connection.connection.dbapi_connection
    return dbapi_connection is not None and dbapi_connection.isolation_level is not None


def _add_claim_column(connection: Connection) -> None:
    """`attempts.claim` came a few commits before the baseline was written: a store created
    by `create_all` before it lacks the column the baseline assumes (every send would fail)."""
    columns = {c["name"] for c in inspect(connection).get_columns("attempts")}
    if "claim" not in columns:
        connection.exec_driver_sql("ALTER TABLE attempts ADD COLUMN claim VARCHAR(200)")
