"""What the web service's webhooks and API share: the settings, and one case service over the
configured store, opened on first use (so `starter.py serve` starts without a database, and a
test hands in the case service of its harness)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from service.cases import CaseService
from settings import Settings
from store.case_store import CaseStore


async def _wall_clock() -> datetime:
    return datetime.now(UTC)


class WebContext:
    def __init__(
        self,
        settings: Settings,
        cases: CaseService | None = None,
        clock: Callable[[], Awaitable[datetime]] = _wall_clock,
    ) -> None:
        """`clock`: the time events are recorded and judged at (a time-skipping test gives
        the test server's); signature windows always use the wall clock."""
        self.settings = settings
        self.now = clock
        self._cases = cases
        self._store: CaseStore | None = None  # opened here, so closed here
        self._lock = asyncio.Lock()

    async def cases(self) -> CaseService:
        """The case service (a FastAPI dependency); Temporal is connected when first needed."""
        if self._cases is None:
            async with self._lock:
                if self._cases is None:
                    store = CaseStore.from_url(self.settings.database_url)
                    await store.create_schema()
                    self._store = store
                    self._cases = CaseService(store, self.settings)
        return self._cases

    async def aclose(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None
            self._cases = None
