"""What a message costs the case store against its database driver alone, side by side.

    python -m bench.store_statements [--messages 2000] [--store sqlite|postgresql|both]

Every message a case sends writes two rows' worth of statements: the claim that lets one try
call the provider, then its result. This runs N messages' claim and result through the
`CaseStore` (its statements built once, `store/prepared.py`; SQLite on threads of its own,
`store/threads.py`; PostgreSQL through SQLAlchemy's asyncio layer) and then the same two SQL
statements through the bare driver, and prints the CPU per message of each and their ratio:
the price of the store's layer over the statements themselves. For SQLite the bare driver runs
as the store does (sqlite3, one trip to a thread per statement), and as aiosqlite, the asyncio
driver the store used before: most of its cost is its four trips to its thread per statement.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg

from bench.databases import POSTGRES_ADMIN, scratch_store
from bench.machine import machine_line
from models.case import AttemptResult, Purpose, RecipientRole, case_id_for
from models.directory import Channel
from models.outreach import OutreachRequest
from store.case_store import CaseStore

_COLUMNS = "key, case_id, step, channel, recipient_role, purpose, round, state, claim, detail, "
_COLUMNS += "dry_run, started_at"
_FINISHED = "state, result, detail, provider_id, dry_run, finished_at"


def _request(n: int) -> OutreachRequest:
    return OutreachRequest(
        case_id=case_id_for(f"bench-{n}"),
        appointment_id=f"bench-{n}",
        step="client/1/sms",
        channel=Channel.sms,
        recipient_role=RecipientRole.client,
        purpose=Purpose.client_outreach,
        round=1,
        client_id="C1",
        therapist_id="T1",
        scheduled_start=datetime(2026, 11, 23, 15, 0, tzinfo=UTC),
    )


def _row(request: OutreachRequest, at: datetime) -> tuple[Any, ...]:
    values = (request.key, request.case_id, request.step, request.channel.value)
    values += (request.recipient_role.value, request.purpose.value, request.round, "sending")
    return (*values, "claim", "", False, at)


async def _store_messages(store: CaseStore, requests: list[OutreachRequest]) -> None:
    at = datetime.now(UTC)
    for request in requests:
        await store.claim_attempt(request, at, "claim", None)
        await store.record_result(request, AttemptResult.sent, "ok", "SM1", False, at)


_SQLITE_CLAIM = f"INSERT INTO attempts ({_COLUMNS}) VALUES ({', '.join('?' * 12)}) "
_SQLITE_CLAIM += "ON CONFLICT (key) DO NOTHING RETURNING key"
_SQLITE_FINISH = f"UPDATE attempts SET ({_FINISHED}) = (?, ?, ?, ?, ?, ?) "
_SQLITE_FINISH += "WHERE key = ? AND state != 'done' RETURNING *"


async def _sqlite3_messages(path: str, requests: list[OutreachRequest]) -> None:
    """sqlite3 on a thread of its own, one trip per statement (as `store.threads` runs it)."""
    at = datetime.now(UTC).replace(tzinfo=None)  # the store keeps naive UTC on SQLite
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")

    def run(sql: str, values: tuple[Any, ...]) -> Any:
        return db.execute(sql, values).fetchone()

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1) as thread:
        for request in requests:
            await loop.run_in_executor(thread, run, _SQLITE_CLAIM, _row(request, at))
            finished = ("done", "sent", "ok", "SM1", False, at, request.key)
            await loop.run_in_executor(thread, run, _SQLITE_FINISH, finished)
    db.close()


async def _aiosqlite_messages(path: str, requests: list[OutreachRequest]) -> None:
    at = datetime.now(UTC).replace(tzinfo=None)
    claim, finish = _SQLITE_CLAIM, _SQLITE_FINISH
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        for request in requests:
            async with db.execute(claim, _row(request, at)) as cursor:
                await cursor.fetchone()
            finished = ("done", "sent", "ok", "SM1", False, at, request.key)
            async with db.execute(finish, finished) as cursor:
                await cursor.fetchone()


async def _postgres_messages(dsn: str, requests: list[OutreachRequest]) -> None:
    at = datetime.now(UTC)
    places = ", ".join(f"${n}" for n in range(1, 13))
    claim = f"INSERT INTO attempts ({_COLUMNS}) VALUES ({places}) "
    claim += "ON CONFLICT (key) DO NOTHING RETURNING key"
    finish = f"UPDATE attempts SET ({_FINISHED}) = ($1, $2, $3, $4, $5, $6) "
    finish += "WHERE key = $7 AND state != 'done' RETURNING *"
    db = await asyncpg.connect(dsn)
    try:
        for request in requests:
            await db.fetchrow(claim, *_row(request, at))
            await db.fetchrow(finish, "done", "sent", "ok", "SM1", False, at, request.key)
    finally:
        await db.close()


async def _cpu_ms_per_message(run: Awaitable[None], messages: int) -> float:
    began = time.process_time()  # this process: the driver's own thread included
    await run
    return (time.process_time() - began) / messages * 1000


async def _measure(kind: str, messages: int, folder: Path) -> str:
    url, discard = await scratch_store(kind, folder)
    store = CaseStore.from_url(url)
    try:
        await store.create_schema()
        warm = [_request(-n - 1) for n in range(50)]
        await _store_messages(store, warm)
        first = [_request(n) for n in range(messages)]
        through_store = await _cpu_ms_per_message(_store_messages(store, first), messages)
        drivers: list[tuple[str, Callable[[list[OutreachRequest]], Awaitable[None]]]]
        if kind == "sqlite":
            path = url.split("///", 1)[1]
            drivers = [
                ("sqlite3 on a thread", lambda bare: _sqlite3_messages(path, bare)),
                ("aiosqlite", lambda bare: _aiosqlite_messages(path, bare)),
            ]
        else:
            dsn = f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{url.rsplit('/', 1)[1]}"
            drivers = [("asyncpg", lambda bare: _postgres_messages(dsn, bare))]
        lines = [f"{kind:<10} {'the store':<27} {through_store:6.3f} ms"]
        for number, (name, run) in enumerate(drivers, start=1):
            bare = [_request(messages * number + n) for n in range(messages)]
            driver = await _cpu_ms_per_message(run(bare), messages)
            ratio = f"store/driver {through_store / driver:4.1f}"
            lines.append(f"{'':<10} {name + ' alone':<27} {driver:6.3f} ms  {ratio}")
    finally:
        await store.close()
        await discard()
    return "\n".join(lines)


async def _main(messages: int, kinds: list[str]) -> None:
    print(machine_line())
    print(f"{messages} messages, each a claim and a result (two statements), CPU per message:")
    with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
        for kind in kinds:
            print(await _measure(kind, messages, Path(folder)), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    asyncio.run(_main(args.messages, kinds))


if __name__ == "__main__":
    main()
