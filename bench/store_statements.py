"""What a message costs the case store against its database driver alone, side by side.

    python -m bench.store_statements [--messages 2000] [--store sqlite|postgresql|both]

Every message a case sends writes two rows' worth of statements: the claim that lets one try
call the provider, then its result. This runs N messages' claim and result through the
`CaseStore` (SQLAlchemy's asyncio layer, the store's statements built once, `store/prepared.py`)
and then the same two SQL statements through the bare driver (aiosqlite or asyncpg) on one
connection, and prints the CPU per message of each and their ratio: the price of the store's
layer over the round trips themselves, which the throughput benchmark cannot separate out.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
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


async def _sqlite_messages(path: str, requests: list[OutreachRequest]) -> None:
    at = datetime.now(UTC).replace(tzinfo=None)  # the store keeps naive UTC on SQLite
    claim = f"INSERT INTO attempts ({_COLUMNS}) VALUES ({', '.join('?' * 12)}) "
    claim += "ON CONFLICT (key) DO NOTHING RETURNING key"
    finish = f"UPDATE attempts SET ({_FINISHED}) = (?, ?, ?, ?, ?, ?) "
    finish += "WHERE key = ? AND state != 'done' RETURNING *"
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


async def _cpu_ms_per_message(run: Callable[[], Awaitable[None]], messages: int) -> float:
    began = time.process_time()  # this process: the driver's own thread included
    await run()
    return (time.process_time() - began) / messages * 1000


async def _measure(kind: str, messages: int, folder: Path) -> str:
    url, discard = await scratch_store(kind, folder)
    store = CaseStore.from_url(url)
    try:
        await store.create_schema()
        warm = [_request(-n - 1) for n in range(50)]
        await _store_messages(store, warm)
        through_store = await _cpu_ms_per_message(
            lambda: _store_messages(store, [_request(n) for n in range(messages)]), messages
        )
        bare = [_request(messages + n) for n in range(messages)]
        if kind == "sqlite":
            path = url.split("///", 1)[1]
            driver = await _cpu_ms_per_message(lambda: _sqlite_messages(path, bare), messages)
        else:
            dsn = f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{url.rsplit('/', 1)[1]}"
            driver = await _cpu_ms_per_message(lambda: _postgres_messages(dsn, bare), messages)
    finally:
        await store.close()
        await discard()
    return (
        f"{kind:<10} store {through_store:6.3f} ms  driver alone {driver:6.3f} ms  "
        f"ratio store/driver {through_store / driver:4.1f}"
    )


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
