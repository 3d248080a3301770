"""The worker's workflow cache (WORKER_MAX_CACHED_WORKFLOWS, a test's own size winning) and the
workflow tasks it runs at once (WORKER_MAX_CONCURRENT_WORKFLOW_TASKS).

The cache's default is what `bench/held_cases.py` measured: 200 cached cases keep a worker holding
10,000 parked cases under 300 MB; the SDK's own 1000 does not."""

from __future__ import annotations

import uuid

from temporalio.testing import WorkflowEnvironment

from settings import Settings
from store.case_store import CaseStore
from tests.fakes import RecordingProviders
from worker import build_worker


async def test_the_cache_follows_the_setting_unless_the_caller_gives_its_own(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    client, providers = time_skipping_env.client, RecordingProviders().bundle()
    assert Settings.model_fields["worker_max_cached_workflows"].default == 200
    settings = Settings(worker_max_cached_workflows=7, temporal_task_queue="unused")
    for own, expected in (({}, 7), ({"max_cached_workflows": 0}, 0)):
        queue = f"cache-{uuid.uuid4().hex[:8]}"
        worker = build_worker(client, settings, sqlite_store, providers, queue, **own)
        async with worker:  # started and shut down: no registration left behind
            assert worker.config()["max_cached_workflows"] == expected


async def test_workflow_tasks_at_once_follow_the_setting(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    """WORKER_MAX_CONCURRENT_WORKFLOW_TASKS, 10 by default (not the SDK's 100): the figures in
    settings.py, from `python -m bench.throughput`."""
    client, providers = time_skipping_env.client, RecordingProviders().bundle()
    assert Settings.model_fields["worker_max_concurrent_workflow_tasks"].default == 10
    for value in (10, 3):
        settings = Settings(worker_max_concurrent_workflow_tasks=value, temporal_task_queue="x")
        queue = f"slots-{uuid.uuid4().hex[:8]}"
        worker = build_worker(client, settings, sqlite_store, providers, queue)
        async with worker:
            assert worker.config()["max_concurrent_workflow_tasks"] == value
