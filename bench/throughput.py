"""Cases per second against Temporal's own floor, on one dev server, in one run.

    python -m bench.throughput [--cases 300] [--store sqlite|postgresql] [--profile]
                               [--worker-processes N]

(1) One full case (the client unreachable for two rounds, the emergency contact, the therapist
    notified, then the therapist's close-out) on a seconds-scale policy; its history gives the
    case's shape: how many activities, local activities and fired timers, in which batches.
(2) The floor: N `bench.floor.FloorWorkflow`s of exactly that shape with no-op activities,
    each ended by one Update. That is what Temporal and the SDK cost on this machine.
(3) N full cases through the case service, the real activities and the case store, each closed
    out by the "therapist" as soon as it awaits them.

Both run on the same dev server (SQLite, journal_mode=WAL, synchronous=OFF) and the same
worker processes, so the ratio holds on a noisy machine: this one, and with
`--worker-processes N` N-1 more (`worker.py` for the cases, `bench.floor_worker` for the
floor). Messages are dry runs (no provider). The driver (opening cases, polling for those that
await their therapist) has a case store of its own, so the statements counted are the worker's:
those of the one case in (1), which ran alone. `--profile` adds where this process's worker
spends its time during (3), sampled by py-spy (`bench/sampling.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.databases import scratch_store
from bench.floor import FloorWorkflow, Shape, noop, shape_of
from bench.machine import machine_line
from bench.processes import WorkerProcess, cpu_seconds, worker_env
from bench.reaction import floor_outreach_reaction, percentile, reaction_times
from bench.sampling import Sampler
from models.answers import CaseOutcome, ClientReached, FeeChoice, FeeDecision
from models.case import Stage
from models.policy import EscalationPolicy, load_policy, validate_policy
from providers.factory import build_providers
from service.cases import CaseService
from settings import Settings
from store.case_store import CaseStore
from store.directory_csv import import_directory_csv
from temporal_env.binaries import find_binary
from temporal_env.codec import data_converter
from temporal_env.process import exit_now
from worker import build_worker
from workflows.search_attributes import ALL_KEYS

ROOT = Path(__file__).resolve().parent.parent
# Cases each worker keeps cached: the SDK's default, which the floor's worker would have anyway.
# Both workers get the same, so the ratio compares work, not cache sizes. The product's default
# (settings.py, 200) is sized for cases held for days; with more cases than that moving at once
# each wakes to a replay of its history (`--cache 200`: see bench/gaps.md).
FLOOR_CACHE = 1000
CLOSE_OUT = ClientReached(
    outcome=CaseOutcome.reached_safe,
    note="Reached; safe.",
    follow_up_plan="Keep next week's session.",
    fee=FeeDecision(decision=FeeChoice.waive, reason="benchmark"),
    by="T100",
).model_dump(mode="json")


def bench_policy() -> EscalationPolicy:
    """The demo policy with one-second waits: the full path in a few seconds per case."""
    demo = load_policy(ROOT / "policies" / "demo.toml").model_dump(mode="json")
    for outreach_round in demo["rounds"]:
        outreach_round["then_wait"] = "1s"
    demo.update(
        name="bench",
        grace="1s",
        emergency_contact_wait="1s",
        therapist_reminder_every="10m",
        supervisor_after="1h",
        supervisor_renotify_every="1h",
    )
    return validate_policy(demo, "bench")


@dataclass
class Run:
    label: str
    cases: int
    started_in: float  # seconds to start them all
    finished_in: float  # seconds from the first start to the last close
    outreach_reactions: list[float] = field(default_factory=list)  # grace fired -> first send
    closing_reactions: list[float] = field(default_factory=list)  # close-out -> resolution

    @property
    def cases_per_second(self) -> float:
        return self.cases / self.finished_in

    @property
    def starts_per_second(self) -> float:
        return self.cases / self.started_in


async def _start_dev_server(folder: Path) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        dev_server_database_filename=str(folder / "temporal.db"),
        dev_server_extra_args=[
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=off",
        ],
        data_converter=data_converter(None),
        search_attributes=ALL_KEYS,
        ui=False,
        dev_server_log_level="error",
    )


def _helpers(
    processes: int,
    address: str,
    case_queue: str,
    floor_queue: str,
    url: str,
    folder: Path,
    cache: int,
) -> list[WorkerProcess]:
    """The worker processes beside this one: per extra process a `worker.py` for the cases and
    a `bench.floor_worker` for the floor."""
    helpers = []
    for i in range(processes - 1):
        env = worker_env(
            address,
            case_queue,
            url,
            CALL_POLL_INTERVAL_SECONDS="0.01",
            WORKER_MAX_CACHED_WORKFLOWS=str(cache),
        )
        helpers.append(WorkerProcess(["worker.py"], env, folder / f"worker-{i}.log"))
        floor_args = ["-m", "bench.floor_worker", address, floor_queue, str(cache)]
        helpers.append(WorkerProcess(floor_args, dict(os.environ), folder / f"floor-{i}.log"))
    return helpers


async def _run_floor(client: Client, queue: str, shape: Shape, n: int) -> Run:
    began = time.perf_counter()
    handles = await asyncio.gather(
        *(
            client.start_workflow(
                FloorWorkflow.run, shape, id=f"floor-{uuid.uuid4().hex}", task_queue=queue
            )
            for _ in range(n)
        )
    )
    started = time.perf_counter() - began
    await asyncio.gather(*(h.execute_update(FloorWorkflow.close) for h in handles))
    await asyncio.gather(*(h.result() for h in handles))
    run = Run("floor", n, started, time.perf_counter() - began)
    for handle in handles:
        outreach = floor_outreach_reaction(await handle.fetch_history())
        if outreach is not None:
            run.outreach_reactions.append(outreach)
    return run


async def _run_cases(service: CaseService, policy: EscalationPolicy, n: int) -> Run:
    """Open n cases, close each out as soon as it awaits its therapist, until all are closed."""
    store = service.store
    began = time.perf_counter()
    now = datetime.now(UTC)
    opened = await asyncio.gather(
        *(
            service.open(
                appointment_id=f"B{uuid.uuid4().hex[:16]}",
                client_id="C100",
                scheduled_start=now,
                policy=policy,
                now=now,
            )
            for _ in range(n)
        )
    )
    started = time.perf_counter() - began
    ids = {o.case_id for o in opened}
    closing: set[str] = set()
    gate = asyncio.Semaphore(64)

    close_sent: dict[str, datetime] = {}

    async def close(case_id: str) -> None:
        async with gate:
            close_sent[case_id] = datetime.now(UTC)
            await service.close_out(case_id, CLOSE_OUT)

    tasks: list[asyncio.Task[None]] = []
    while len(closing) < n:
        # Open cases only, four times a second: the driver must not be what is measured.
        for row in await store.list_cases():
            if row.stage is Stage.awaiting_therapist and row.case_id in ids - closing:
                closing.add(row.case_id)
                tasks.append(asyncio.create_task(close(row.case_id)))
        await asyncio.sleep(0.25)
    await asyncio.gather(*tasks)
    client = await service.temporal()
    for case_id in ids:
        try:
            await client.get_workflow_handle(case_id).result()
        except Exception as exc:
            cause = exc
            while cause.__cause__ is not None:
                cause = cause.__cause__
            print(f"case {case_id} failed: {exc!r} <- {cause!r}")
    run = Run("cases", n, started, time.perf_counter() - began)
    for case_id in ids:
        history = await client.get_workflow_handle(case_id).fetch_history()
        outreach, closing = reaction_times(history, close_sent.get(case_id))
        if outreach is not None:
            run.outreach_reactions.append(outreach)
        if closing is not None:
            run.closing_reactions.append(closing)
    return run


async def measure(
    n: int, store_kind: str, profile: bool, processes: int, cache: int = FLOOR_CACHE
) -> list[str]:
    folder = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    env = await _start_dev_server(folder)
    url, discard = await scratch_store(store_kind, folder)
    store, driver_store = CaseStore.from_url(url), CaseStore.from_url(url)
    try:
        await store.create_schema()
        await import_directory_csv(store, ROOT / "samples" / "directory.csv")
        settings = Settings(
            temporal_task_queue=f"bench-{uuid.uuid4().hex[:8]}",
            database_url="unused",
            call_poll_interval_seconds=0.01,
            worker_max_cached_workflows=cache,
            twilio_account_sid=None,
            sendgrid_api_key=None,
        )
        providers = build_providers(settings)
        service = CaseService(driver_store, settings, env.client)
        policy = bench_policy()
        floor_queue = f"floor-{uuid.uuid4().hex[:8]}"
        floor_worker = Worker(
            env.client,
            task_queue=floor_queue,
            workflows=[FloorWorkflow],
            activities=[noop],
            max_cached_workflows=cache,
        )
        address = env.client.service_client.config.target_host
        helpers = _helpers(
            processes, address, settings.temporal_task_queue, floor_queue, url, folder, cache
        )
        async with build_worker(env.client, settings, store, providers), floor_worker:
            statements = store.count_statements()
            await _run_cases(service, policy, 1)  # warm-up, the case's shape and statements
            one_case = statements()
            [first] = await driver_store.list_cases(open_only=False)
            history = await env.client.get_workflow_handle(first.case_id).fetch_history()
            shape = shape_of(history)
            await asyncio.gather(*(helper.start() for helper in helpers))
            try:
                cpu = _worker_cpu(helpers)
                floor = await _run_floor(env.client, floor_queue, shape, n)
                floor_cpu, cpu = _worker_cpu(helpers) - cpu, _worker_cpu(helpers)
                sampler = Sampler(folder) if profile else None
                async with sampler or nullcontext():
                    cases = await _run_cases(service, policy, n)
                cases_cpu = _worker_cpu(helpers) - cpu
            finally:
                await asyncio.gather(*(helper.stop() for helper in helpers))
        await providers.aclose()
    finally:
        await store.close()
        await driver_store.close()
        await discard()
        await env.shutdown()
    activities, local_activities, timers = shape.counts()
    sent, writes = one_case
    lines = [
        machine_line(),
        f"case store: {store_kind}; dev server: SQLite (WAL, synchronous=OFF); {n} cases",
        f"worker processes: {processes} ({_processes_label(processes)}); workflow cache "
        f"{cache} cases in each (WORKER_MAX_CACHED_WORKFLOWS)",
        f"one case's shape: {len(history.events)} events; {activities} activities, "
        f"{local_activities} local activities, {timers} fired timers, 1 Update",
        f"floor: {floor.cases_per_second:6.1f} cases/s ({floor.finished_in:5.1f} s), "
        f"{floor.starts_per_second:6.0f} starts/s",
        f"cases: {cases.cases_per_second:6.1f} cases/s ({cases.finished_in:5.1f} s), "
        f"{cases.starts_per_second:6.0f} starts/s",
        f"ratio cases/floor: {cases.cases_per_second / floor.cases_per_second:.2f} "
        "(target at least 0.8)",
        f"worker CPU per case (every worker process, the driver's included): floor "
        f"{floor_cpu / n * 1000:.0f} ms, cases {cases_cpu / n * 1000:.0f} ms, "
        f"ratio floor/cases {floor_cpu / cases_cpu:.2f}",
        f"case store: {sent} SQL statements for one case, {writes} of them writes (the "
        "worker's, the case alone; the floor sends none)",
    ]
    for label, values, target in (
        ("grace timer fired -> first outreach request", cases.outreach_reactions, 1.0),
        ("close-out -> resolution in the store", cases.closing_reactions, 2.0),
    ):
        if values:
            p50, p99 = percentile(values, 50), percentile(values, 99)
            met = "met" if p99 < target else "not met"
            lines.append(
                f"reaction, {label}: p50 {p50:.3f} s, p99 {p99:.3f} s over {len(values)} "
                f"cases (target p99 under {target:g} s: {met})"
            )
    if floor.outreach_reactions:
        p50 = percentile(floor.outreach_reactions, 50)
        p99 = percentile(floor.outreach_reactions, 99)
        lines.append(
            f"reaction, the floor's own (first timer fired -> next activity started, no-op "
            f"activities, {n} at once): p50 {p50:.3f} s, p99 {p99:.3f} s"
        )
    if sampler is not None and sampler.profile is not None:
        lines += sampler.profile.lines(cases_cpu)
    return lines


def _worker_cpu(helpers: list[WorkerProcess]) -> float:
    """CPU seconds so far of this process (its worker and the driver) and the helpers: a
    figure a noisy machine changes less than it changes cases per second."""
    return time.process_time() + sum(cpu_seconds(helper.pid) for helper in helpers)


def _processes_label(processes: int) -> str:
    if processes == 1:
        return "this one, for the floor and the cases"
    return f"this one and {processes - 1} more for each: bench.floor_worker, worker.py"


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--worker-processes", type=int, default=1)
    parser.add_argument(
        "--cache",
        type=int,
        default=FLOOR_CACHE,
        help="workflows each worker keeps cached, the floor's and the cases' alike "
        f"(default {FLOOR_CACHE}, the SDK's; the product's own default is smaller)",
    )
    args = parser.parse_args(argv)
    if args.worker_processes < 1:
        parser.error("--worker-processes: at least 1")
    lines = asyncio.run(
        measure(args.cases, args.store, args.profile, args.worker_processes, args.cache)
    )
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
    exit_now(0)  # temporalio/sdk-python#300: finalizing after the client can abort (SIGABRT)
