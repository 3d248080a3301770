"""Many activities write the SQLite store at once (a worker runs dozens): none may fail with
"database is locked". The driver's own lazy DEFERRED transactions did, within the busy timeout,
when writers and readers interleaved (the demo's close-out failed so on a loaded CI machine);
the store now begins its own, IMMEDIATE for writes, in WAL mode (`store/sqlite.py`)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from models.case import AttemptResult
from store import CaseStore
from tests import directory_data
from tests.directory_data import SESSION_START, outreach_request

WRITERS = 20
READERS = 5
ROUNDS = 5


async def test_concurrent_writers_and_readers_never_meet_a_locked_database(
    tmp_path: Path,
) -> None:
    # A short busy timeout: a writer that has to wait for the lock in turn still gets it well
    # within it; one caught upgrading a read lock (the old way) fails at once or at its end.
    store = CaseStore.from_url(
        f"sqlite+aiosqlite:///{tmp_path}/cases.db", sqlite_busy_timeout_s=0.5
    )
    await store.create_schema()
    at = SESSION_START + timedelta(minutes=20)

    async def writer(n: int) -> None:
        for r in range(ROUNDS):
            request = outreach_request(step=f"client/{n}-{r}/sms")
            await store.start_attempt(request, at)
            await store.finish_attempt(request.key, AttemptResult.sent, "", f"SM{n}-{r}", False, at)

    async def reader() -> None:
        for _ in range(ROUNDS * 3):
            await store.attempts_for_case(outreach_request().case_id)
            await store.case_stats(at)

    try:
        results = await asyncio.gather(
            *(writer(n) for n in range(WRITERS)),
            *(reader() for _ in range(READERS)),
            return_exceptions=True,
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        attempts = await store.attempts_for_case(outreach_request().case_id)
        assert len(attempts) == WRITERS * ROUNDS
        assert {a.provider_id for a in attempts} == {
            f"SM{n}-{r}" for n in range(WRITERS) for r in range(ROUNDS)
        }
    finally:
        await store.close()


async def test_a_write_whose_caller_is_cancelled_midway_is_applied_whole_and_frees_the_lock(
    tmp_path: Path,
) -> None:
    """A close-out cancels activities in the middle of their store writes. The write still
    commits whole before the caller is cancelled, and the next writer gets the lock at once
    (a write cut in half once kept SQLite's write lock until the worker ended)."""
    store = CaseStore.from_url(
        f"sqlite+aiosqlite:///{tmp_path}/cases.db", sqlite_busy_timeout_s=0.5
    )
    await store.create_schema()
    at = SESSION_START + timedelta(minutes=20)
    clients = [
        directory_data.CLIENTS[0].model_copy(update={"client_id": f"C{n}"}) for n in range(3000)
    ]
    try:
        importing = asyncio.create_task(store.import_directory(directory_data.THERAPISTS, clients))
        await asyncio.sleep(0.05)  # inside its transaction
        assert not importing.done()
        importing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await importing
        assert await store.get_client("C2999") is not None  # applied whole
        request = outreach_request()
        await store.start_attempt(request, at)  # the lock is free: within the 0.5 s timeout
        assert (await store.get_attempt(request.key)) is not None
    finally:
        await store.close()


async def test_a_write_waiting_out_another_process_lock_holds_up_neither_reads_nor_the_loop(
    tmp_path: Path,
) -> None:
    """Another process (the web service, the CLI) holds SQLite's write lock: the store's write
    waits for it on the store's write thread, while its reads and the event loop go on; once
    the lock is released the write goes through (`store/threads.py`)."""
    path = tmp_path / "cases.db"
    store = CaseStore.from_url(f"sqlite+aiosqlite:///{path}", sqlite_busy_timeout_s=10)
    await store.create_schema()
    await store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # the other process's write transaction
        request = outreach_request()
        write = asyncio.create_task(store.claim_attempt(request, SESSION_START, "try-1", None))
        await asyncio.sleep(0.3)
        assert not write.done()  # waiting for the lock
        ticks = 0

        async def ticking() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        clock = asyncio.create_task(ticking())
        for _ in range(20):  # reads meanwhile, each answered at once
            assert await asyncio.wait_for(store.get_client("C1"), 1) is not None
        await asyncio.sleep(0.2)
        clock.cancel()
        assert ticks >= 10 and not write.done()  # the loop ran; the write still waits
        other.execute("COMMIT")
        assert await asyncio.wait_for(write, 5) is True
        row = await store.get_attempt(request.key)
        assert row is not None and (row.state, row.claim) == ("sending", "try-1")
    finally:
        other.close()
        await store.close()
