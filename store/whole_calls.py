"""Every call into the case store runs to its end once begun, even when its caller is cancelled.

A close-out cancels the case's activities wherever they are, often in the middle of a store
write. Cancelled inside SQLAlchemy's asyncio layer, a write could leave its connection outside
the pool with SQLite's write lock (`BEGIN IMMEDIATE`) still held: every later write then failed
with SQLITE_BUSY until the process ended (the throughput benchmark stalled on it). So a cancelled
caller waits for its store call to commit or roll back, then is cancelled: a write is applied
whole or not at all, and its connection always goes back to the pool.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

Store = TypeVar("Store", bound=type)


def whole_calls(cls: Store) -> Store:
    """Class decorator: each public coroutine method of `cls` (inherited ones included)."""
    for name, method in inspect.getmembers(cls, inspect.iscoroutinefunction):
        if not name.startswith("_"):
            setattr(cls, name, _whole(method))
    return cls


def _whole(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def whole(*args: Any, **kwargs: Any) -> Any:
        call = asyncio.ensure_future(method(*args, **kwargs))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            await asyncio.wait([call])  # commit or roll back first, then give way
            if not call.cancelled():
                call.exception()  # retrieved: the caller's cancellation is what counts
            raise

    return whole
