"""The durable case store (SQLAlchemy 2, async): SQLite by default, PostgreSQL via DATABASE_URL.

It holds the directory (clients, emergency contacts, therapists), cases, one row per outreach
attempt, notes, attendance history and documented resolutions, which outlive Temporal's retention.
"""
