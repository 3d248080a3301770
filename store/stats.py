"""The case store's figures for `starter.py stats` and the worker's metrics: aggregate queries
only (counts and ages), so nothing personal leaves the store this way.

A mixin of `CaseStore` (it uses the store's query helpers)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from models.case import AttemptResult, Stage
from models.stats import CaseStats, MessageCount
from store.schema import AttemptTable, CaseTable


class CaseStatsQueries:
    _first: Callable[..., Any]
    _all: Callable[..., Any]

    async def case_stats(self, now: datetime) -> CaseStats:
        opened = await self._first(select(func.count().label("n")).select_from(CaseTable))
        by_outcome = await self._all(
            select(CaseTable.outcome, func.count().label("n"))
            .where(CaseTable.closed_at.is_not(None))
            .group_by(CaseTable.outcome)
        )
        by_stage = await self._all(
            select(CaseTable.stage, func.count().label("n"))
            .where(CaseTable.closed_at.is_(None))
            .group_by(CaseTable.stage)
        )
        waiting = await self._first(
            select(func.min(CaseTable.stage_since).label("since")).where(
                CaseTable.closed_at.is_(None), CaseTable.stage == Stage.awaiting_therapist.value
            )
        )
        messages = await self._all(
            select(AttemptTable.channel, AttemptTable.result, func.count().label("n")).group_by(
                AttemptTable.channel, AttemptTable.result
            )
        )
        unconfirmed = AttemptTable.result == AttemptResult.unconfirmed.value
        oldest_unconfirmed = await self._first(
            select(func.min(CaseTable.opened_at).label("since"))
            .join(AttemptTable, AttemptTable.case_id == CaseTable.case_id)
            .where(CaseTable.closed_at.is_(None), unconfirmed)
        )
        counts = [
            MessageCount(channel=r["channel"], result=r["result"] or "in_flight", count=r["n"])
            for r in messages
        ]
        return CaseStats(
            at=now,
            cases_opened=opened["n"] if opened else 0,
            cases_closed={str(r["outcome"]): r["n"] for r in by_outcome},
            cases_open={r["stage"]: r["n"] for r in by_stage},
            oldest_awaiting_therapist_seconds=_age(now, waiting),
            messages=sorted(counts, key=lambda m: (m.channel, m.result)),
            unconfirmed_messages=sum(
                m.count for m in counts if m.result == AttemptResult.unconfirmed.value
            ),
            oldest_open_unconfirmed_seconds=_age(now, oldest_unconfirmed),
        )


def _age(now: datetime, row: Any) -> float | None:
    since: datetime | None = row["since"] if row else None
    if since is None:
        return None
    return max((now - since).total_seconds(), 0.0)
