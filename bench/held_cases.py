"""Cases held awaiting the therapist by one `worker.py` process: its memory, and closing them.

    python -m bench.held_cases [--cases 10000] [--tuned-cache 200]

A parked case waits for its therapist for hours or days; a practice holds thousands at once.
What one worker costs for them is its workflow cache: cached cases stay in memory, the others
are evicted and replayed from their history when they next wake (a reminder, an answer, a
query). So the run measures the real `worker.py` (a subprocess, dry-run providers, no metrics
endpoint) twice on the same parked cases, side by side:

(A) a worker with the SDK's default cache (1000) opens the N cases itself (a seconds-scale
    policy: one SMS to the client, one email to the emergency contact, one to the therapist,
    then reminders hours apart, so none falls due) and parks them all; its peak RSS (VmHWM)
    and its RSS once they are all parked and it is idle (VmRSS). Cases are opened in waves
    (at most 200 not yet parked), as a practice's arrive over time: all 10,000 at once would
    measure a cache thrashing through outreach instead.
(B) A stops gracefully; a worker with the tuned cache takes the same parked cases over with one
    `case_status` query each (a replay into its cache; no new history), measured the same
    way, then closes every case (the therapist's close-out through the case service); its
    peak covers the close-all too.

Why a takeover and not a second set of cases: parking costs the product's whole outreach path
(about 3 cases/s on 2 cores; `bench/throughput.py` measures that), so one set is all the time
budget allows, and a takeover is what a restarted or added worker does anyway. B's peak
therefore includes no outreach (printed as such). With fewer than 10,000 cases (`make bench`
runs 300: 10,000 take over an hour here) the 10,000 figure is projected from the run's own
per-case cost and printed as projected. The RSS at start (the worker connected, before any
case is opened) is subtracted for the MB per 1,000 held cases. Cases are counted by
visibility (`OutreachStage`), never one by one.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import shutil
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from bench.machine import machine_line
from bench.processes import WorkerProcess, status_kb, worker_env
from bench.throughput import CLOSE_OUT, _start_dev_server
from models.policy import EscalationPolicy, load_policy, validate_policy
from service.cases import CaseService
from settings import Settings
from store.case_store import CaseStore
from store.directory_csv import import_directory_csv

ROOT = Path(__file__).resolve().parent.parent
SDK_DEFAULT_CACHE = 1000  # temporalio.worker.Worker's max_cached_workflows
PRODUCT_DEFAULT_CACHE = Settings.model_fields["worker_max_cached_workflows"].default
TARGET_CASES, TARGET_MB = 10_000, 300.0
CONCURRENCY = 32  # opens, queries and close-outs in flight at once
WINDOW = 200  # cases opened and not yet parked, at most


def held_policy() -> EscalationPolicy:
    """The demo policy with one-second waits and one message per stage; the therapist is then
    reminded only every 6 hours, so every case parks and nothing wakes during the run."""
    demo = load_policy(ROOT / "policies" / "demo.toml").model_dump(mode="json")
    demo.update(
        name="held",
        grace="1s",
        rounds=[{"channels": ["sms"], "then_wait": "1s"}],
        client_rounds_before_emergency_contact={"standard": 1, "elevated": 1, "high": 1},
        emergency_contact_channels=["email"],
        emergency_contact_wait="1s",
        therapist_channels=["email"],
        therapist_reminder_every="6h",
        supervisor_after="24h",
        supervisor_renotify_every="24h",
    )
    return validate_policy(demo, "held")


def _cached(env: dict[str, str], cache: int) -> dict[str, str]:
    """A worker's environment with its cache size."""
    return {**env, "WORKER_MAX_CACHED_WORKFLOWS": str(cache)}


async def _count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def _wait_count(client: Client, query: str, n: int, seconds: float) -> None:
    """Visibility counts, every 2 s (the dev server rate-limits list and count calls)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (seen := await _count(client, query)) < n:
        if loop.time() > deadline:
            raise RuntimeError(f"only {seen} of {n} cases reached {query!r} in {seconds:.0f} s")
        await asyncio.sleep(2.0)


async def _each(items: list[str], act: Callable[[str], Awaitable[object]]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item: str) -> None:
        async with gate:
            await act(item)

    await asyncio.gather(*(one(item) for item in items))


async def _query_until_answered(client: Client, case_id: str, tries: int = 5) -> None:
    """One query, asked again if the server gave up waiting for the worker: the first queries
    after a worker change wait out the stopped worker's sticky queue, and 10,000 evicted cases
    each replayed on demand keep the new worker busy for minutes."""
    for attempt in range(1, tries + 1):
        try:
            await client.get_workflow_handle(case_id).query("case_status")
            return
        except RPCError as error:
            waited_out = error.status in (
                RPCStatusCode.CANCELLED,  # "Timeout expired": the call's own deadline
                RPCStatusCode.DEADLINE_EXCEEDED,  # "query timed out before a worker could ..."
            )
            if not waited_out:
                raise
            if attempt == tries:
                raise


@dataclass
class Held:
    label: str
    cache: int
    cases: int
    start_kb: int
    peak_kb: int
    rest_kb: int

    @property
    def cached(self) -> int:
        return min(self.cases, self.cache)

    @property
    def mb_per_thousand(self) -> float:
        return (self.rest_kb - self.start_kb) / 1024 / self.cases * 1000

    @property
    def mb_per_cached(self) -> float:
        return (self.rest_kb - self.start_kb) / 1024 / max(self.cached, 1)

    def projected_peak_mb(self, cases: int) -> float:
        """At `cases` held: what this run's peak would be with min(cases, cache) cached,
        assuming an evicted case costs the worker nothing (B's figures check that)."""
        growth = self.mb_per_cached * (min(cases, self.cache) - self.cached)
        return self.peak_kb / 1024 + max(growth, 0.0)

    def row(self) -> str:
        mb = 1 / 1024
        return (
            f"{self.label:<22} {self.cache:>6} {self.cached:>7} {self.start_kb * mb:>9.0f} MB "
            f"{self.peak_kb * mb:>7.0f} MB {self.rest_kb * mb:>8.0f} MB "
            f"{self.mb_per_thousand:>9.1f} MB {self.mb_per_cached * 1024:>8.0f} KiB"
        )


def module_reimport_kib(module: str = "workflows.missed_session", copies: int = 20) -> float:
    """What one fresh import of the workflow's module allocates (its code objects, functions,
    class): the sandbox re-imports it for every workflow it keeps."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.loader is not None
    loader = spec.loader

    def fresh() -> object:
        copy = importlib.util.module_from_spec(spec)
        loader.exec_module(copy)
        return copy

    fresh()
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    kept = [fresh() for _ in range(copies)]
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    return (after - before) / copies / 1024


async def _open_in_waves(
    service: CaseService, client: Client, parked: str, n: int, policy: EscalationPolicy
) -> list[str]:
    """Open n cases, at most WINDOW of them not yet parked at a time: a practice's cases arrive
    over time; all at once would measure a cache thrashing through outreach, not holding."""
    now = datetime.now(UTC)
    ids: list[str] = []

    async def open_one(appointment: str) -> None:
        opened = await service.open(
            appointment_id=appointment, client_id="C100", scheduled_start=now,
            policy=policy, now=now,
        )  # fmt: skip
        ids.append(opened.case_id)

    appointments = [f"H{uuid.uuid4().hex[:16]}" for _ in range(n)]
    loop = asyncio.get_running_loop()
    last, progress_at = -1, loop.time()
    while len(ids) < n:
        seen = await _count(client, parked)
        if seen > last:
            last, progress_at = seen, loop.time()
        elif loop.time() - progress_at > 120:
            raise RuntimeError(f"no case parked for 120 s ({seen} of {len(ids)} opened)")
        room = WINDOW - (len(ids) - seen)
        if room > 0:
            await _each(appointments[len(ids) : len(ids) + room], open_one)
        await asyncio.sleep(2.0)  # visibility counts are rate-limited
    return ids


async def measure(n: int, tuned_cache: int) -> list[str]:
    folder = Path(tempfile.mkdtemp(prefix="bench-held-"))
    env = await _start_dev_server(folder)
    database = f"sqlite+aiosqlite:///{folder}/cases.db"
    store = CaseStore.from_url(database)
    await store.create_schema()
    await import_directory_csv(store, ROOT / "samples" / "directory.csv")
    client = env.client
    queue = f"held-{uuid.uuid4().hex[:8]}"
    env_of = worker_env(client.service_client.config.target_host, queue, database)
    service = CaseService(store, Settings(temporal_task_queue=queue), client)
    parked = f'TaskQueue = "{queue}" AND OutreachStage = "awaiting_therapist"'
    completed = f'TaskQueue = "{queue}" AND ExecutionStatus = "Completed"'
    a = WorkerProcess(["worker.py"], _cached(env_of, SDK_DEFAULT_CACHE), folder / "worker-a.log")
    b = WorkerProcess(["worker.py"], _cached(env_of, tuned_cache), folder / "worker-b.log")
    began = time.perf_counter()
    try:
        # (A) parks every case itself.
        a_start = await a.start()
        t0 = time.perf_counter()
        ids = await _open_in_waves(service, client, parked, n, held_policy())
        await _wait_count(client, parked, n, seconds=120)
        await a.idle()
        parked_in = time.perf_counter() - t0
        status = status_kb(a.pid)
        held_a = Held(
            "(A) SDK default", SDK_DEFAULT_CACHE, n, a_start, status["VmHWM"], status["VmRSS"]
        )
        await a.stop()

        # (B) takes the same parked cases over, one query each, then closes them all.
        b_start = await b.start()
        t1 = time.perf_counter()
        await _each(ids, lambda case_id: _query_until_answered(client, case_id))
        took_over_in = time.perf_counter() - t1
        await b.idle()
        status = status_kb(b.pid)
        held_b = Held("(B) tuned", tuned_cache, n, b_start, status["VmHWM"], status["VmRSS"])
        still_parked = await _count(client, parked)
        t2 = time.perf_counter()
        await _each(ids, lambda case_id: service.close_out(case_id, CLOSE_OUT))
        await _wait_count(client, completed, n, seconds=120)
        closed_in = time.perf_counter() - t2
        held_b.peak_kb = status_kb(b.pid)["VmHWM"]  # its lifetime peak: closing included
    except BaseException:
        print(f"failed; the workers' logs and both databases are kept in {folder}")
        raise
    finally:
        await a.stop()
        await b.stop()
        await store.close()
        await env.shutdown()
    shutil.rmtree(folder, ignore_errors=True)
    module_kib = module_reimport_kib()
    lines = [
        machine_line(),
        f"held cases: {n} parked awaiting the therapist; one worker.py process at a time "
        "(dry-run providers, no metrics endpoint); case store SQLite; dev server SQLite "
        "(WAL, synchronous=OFF)",
        "policy: one SMS to the client, one email to the emergency contact, one to the "
        "therapist, then reminders every 6 h (none due during the run)",
        f"cache (WORKER_MAX_CACHED_WORKFLOWS): (A) {SDK_DEFAULT_CACHE}, the SDK's default and "
        f"worker.py's before the setting; (B) {tuned_cache}"
        + (" (the product's default)" if tuned_cache == PRODUCT_DEFAULT_CACHE else ""),
        f"(A) opened and parked {n} (at most {WINDOW} not yet parked at a time) in "
        f"{parked_in:.1f} s ({n / parked_in:.1f} cases/s)",
        f"(B) took the {n} over in {took_over_in:.1f} s ({n / took_over_in:.0f} queries/s, "
        f"each a replay of an evicted case); still parked: {still_parked}",
        "                        cache  cached  at start  peak RSS  at rest  per 1,000 held  "
        "per cached",
        held_a.row(),
        held_b.row(),
        "cached = min(cases, cache), the most the cache holds. Peak = the worker's VmHWM over "
        "its life: A's includes parking the cases (outreach, store writes), B's taking them "
        "over and closing them all. At rest = VmRSS with all parked and the worker idle. MB "
        "per 1,000 held = (at rest - at start) / cases x 1,000: the worker's RSS at start "
        "(connected, before any case was opened) is subtracted.",
    ]
    for held in (held_a, held_b):
        if n >= TARGET_CASES:
            peak, how = held.peak_kb / 1024, "measured"
        else:
            peak, how = held.projected_peak_mb(TARGET_CASES), "projected from this run"
        lines.append(
            f"target {TARGET_CASES:,} held under {TARGET_MB:.0f} MB, {held.label} (cache "
            f"{held.cache}): peak {peak:.0f} MB, {how}: "
            + ("met" if peak < TARGET_MB else "NOT met")
        )
    if n < TARGET_CASES:
        lines.append(
            f"projected = this run's peak + (min({TARGET_CASES:,}, cache) - cached) x per cached "
            "case; an evicted case costs the worker nothing until it wakes"
        )
    per_cached_kib = held_a.mb_per_cached * 1024
    lines += [
        f"close-all by (B): {n} cases closed (close-out answered, resolution recorded, workflow "
        f"completed) in {closed_in:.1f} s: {n / closed_in:.1f} cases/s, {CONCURRENCY} at a time",
        f"why a cached case costs {per_cached_kib:.0f} KiB (A): the SDK's sandbox re-imports "
        "workflows/missed_session.py for every workflow it keeps; one fresh import allocates "
        f"{module_kib:.0f} KiB (its code objects and class), {module_kib / per_cached_kib:.0%} "
        "of it; the rest is the running instance (case state, asyncio tasks, the SDK core's "
        f"per-run state). The idle worker alone (connected, no case yet) is "
        f"{held_a.start_kb / 1024:.0f} MB, {held_a.start_kb / 1024 / TARGET_MB:.0%} of the target.",
        f"total {time.perf_counter() - began:.0f} s",
    ]
    return lines


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=TARGET_CASES)
    parser.add_argument("--tuned-cache", type=int, default=Settings().worker_max_cached_workflows)
    args = parser.parse_args(argv)
    lines = asyncio.run(measure(args.cases, args.tuned_cache))
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
