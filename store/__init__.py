"""The durable case store (SQLAlchemy 2, async): SQLite by default, PostgreSQL via DATABASE_URL.

It holds what must outlive a workflow run or never enter Temporal's history: the directory
(clients, emergency contacts, therapists: PHI, read only by activities), cases, one row per
outreach attempt (so a retried activity never sends a message twice), notes, attendance history
and the documented resolutions, which outlive Temporal's retention.
"""

from store.case_store import CaseStore
from store.rows import AttemptRow, CaseRow

__all__ = ["AttemptRow", "CaseRow", "CaseStore"]
