"""The worker: runs the missed-session workflow and its activities.

    python worker.py            # connects per TEMPORAL_ADDRESS etc. (default localhost:7233)
    LOG_FORMAT=json python worker.py   # one JSON object per log line, for log shippers

SIGTERM or Ctrl-C drains gracefully: in-flight activities get time to finish, and any case
interrupted anyway resumes on the next worker (that is what Temporal is for).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.calendar_sweep import CalendarSweepActivities
from activities.case_records import CaseRecordActivities
from activities.clock import next_send_time
from activities.outreach import OutreachActivities
from models.messages import PracticeInfo
from providers.base import Providers
from providers.factory import build_providers, describe_providers
from service.calendar_sweep import CalendarService
from service.cases import CaseService
from service.page_links import message_links
from settings import Settings
from store.case_store import CaseStore
from temporal_env.bytecode import compile_workflow_modules
from temporal_env.codec import describe_encryption
from temporal_env.connect import connect, payload_keys
from temporal_env.logging_setup import configure_logging
from temporal_env.metrics import CaseMetrics, prometheus_runtime, publish_forever
from temporal_env.process import exit_now
from workflows.calendar_sweep import CalendarSweepWorkflow
from workflows.client_text_notice import ClientTextNoticeWorkflow
from workflows.missed_session import MissedSessionWorkflow

log = logging.getLogger("worker")


def build_worker(
    client: Client,
    settings: Settings,
    store: CaseStore,
    providers: Providers,
    task_queue: str | None = None,
    **worker_options: Any,
) -> Worker:
    """Wire real (or, in tests, fake) clients into the activities and register everything."""
    outreach = OutreachActivities(
        store,
        providers,
        PracticeInfo(
            name=settings.practice_name, callback_number=settings.practice_callback_number
        ),
        call_poll_interval=settings.call_poll_interval_seconds,
        on_call_email=settings.practice_on_call_email,
        practice_time_zone=settings.practice_time_zone,
        links=lambda: message_links(settings),
        call_status_callbacks=settings.public_webhook_base() is not None,
    )
    records = CaseRecordActivities(
        store, settings.practice_time_zone, settings.practice_on_call_email
    )
    queue = task_queue or settings.temporal_task_queue
    cases = CaseService(store, settings.model_copy(update={"temporal_task_queue": queue}), client)
    sweep = CalendarSweepActivities(CalendarService(store, settings, cases))
    compile_workflow_modules()
    # WORKER_MAX_CACHED_WORKFLOWS, unless the caller (a test) gives its own cache size.
    options = {
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
        **worker_options,
    }
    return Worker(
        client,
        task_queue=queue,
        workflows=[MissedSessionWorkflow, CalendarSweepWorkflow, ClientTextNoticeWorkflow],
        activities=[
            sweep.list_calendar_sources,
            sweep.sweep_calendar_source,
            outreach.send_messages,
            outreach.send_sms,  # cases opened before messages were batched, and text notices
            outreach.send_email,
            outreach.place_call,
            records.open_case,
            records.record_stage,
            records.record_note,
            next_send_time,
            records.review_attendance,
            records.record_resolution,
        ],
        graceful_shutdown_timeout=timedelta(seconds=30),
        # A close-out cancels a ringing call's activity; the cancellation reaches it with the
        # answer to a heartbeat, which the SDK would otherwise send only every 24 s.
        max_heartbeat_throttle_interval=timedelta(seconds=2),
        **options,
    )


async def main() -> None:
    settings = Settings()
    configure_logging(json_format=settings.log_format == "json")
    store = CaseStore.from_url(settings.database_url)
    await store.create_schema()
    providers = build_providers(settings)
    runtime = prometheus_runtime(settings.metrics_address) if settings.metrics_address else None
    client = await connect(runtime=runtime)
    worker = build_worker(
        client,
        settings,
        store,
        providers,
        sticky_queue_schedule_to_start_timeout=timedelta(
            seconds=settings.worker_sticky_timeout_seconds
        ),
    )
    publisher = None
    if runtime is not None:
        metrics = CaseMetrics(runtime.metric_meter)
        every = settings.metrics_refresh_seconds
        publisher = asyncio.create_task(publish_forever(store, metrics, every))
        log.info("metrics at http://%s/metrics", settings.metrics_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker started on task queue %s (%s; %s)",
        settings.temporal_task_queue,
        describe_providers(providers),
        describe_encryption(payload_keys()),
    )
    async with worker:
        await stop.wait()
        log.info("shutting down: finishing in-flight activities")
    if publisher is not None:
        publisher.cancel()
    await providers.aclose()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
    exit_now(0)
