"""`starter.py demo`: a whole missed-session case, start to documented resolution, locally.

Starts the embedded dev server (unless TEMPORAL_ADDRESS is set), runs a worker in-process, loads
the sample directory, and opens two cases on the demo policy (seconds instead of hours):

1. Alex (standard risk, consenting emergency contact) does not show and does not answer: calls,
   texts and emails in two rounds, the emergency contact, the therapist; the demo then answers as
   the therapist and prints the documented resolution.
2. Robin (high risk, no consent to contact the emergency contact) is left open awaiting the
   therapist, to look at in the Web UI and close with `starter.py reached`.

No credentials needed: without them every channel is a dry run, marked as such everywhere.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowHandle

from models.calendar import appointment_id_for
from models.case import CaseStatus, RecipientRole, Resolution, Stage, case_id_for
from models.links import PageLinks
from models.policy import load_policy
from models.report import attempt_line, render_resolution
from providers.factory import build_providers, describe_providers
from service.calendar_sweep import CalendarService
from service.cases import CaseService
from service.page_links import page_links
from settings import Settings
from starter import open_store
from store.directory_csv import import_directory_csv
from temporal_env.codec import describe_encryption
from temporal_env.connect import connect, payload_keys
from temporal_env.dev_server import start_dev_server
from temporal_env.schedule import SCHEDULE_ID, ensure_sweep_schedule
from temporal_env.search_attributes import register_search_attributes
from web.app import create_app
from web.pages import PageDeps
from web.serve import free_port, serving
from worker import build_worker
from workflows.missed_session import MissedSessionWorkflow

ROOT = Path(__file__).parent


async def _follow(
    handle: WorkflowHandle[MissedSessionWorkflow, Resolution], until: Stage, label: str
) -> CaseStatus:
    """Print each stage change and attempt as it happens, until the case reaches `until`."""
    seen_attempts, stage = 0, None
    while True:
        status = await handle.query(MissedSessionWorkflow.case_status)
        if status.stage != stage:
            stage = status.stage
            print(f"[{label}] stage -> {stage.value}")
        for attempt in status.attempts[seen_attempts:]:
            print(f"[{label}] {attempt_line(attempt).strip()}")
        seen_attempts = len(status.attempts)
        if status.stage is until:
            return status
        await asyncio.sleep(0.5)


def print_page_links(links: PageLinks, closed: str, open_case: str) -> None:
    """The pages the messages link to (what a therapist, supervisor or client taps)."""
    now = datetime.now(UTC)

    def url(case_id: str, role: RecipientRole, person: str) -> str:
        return links.url(case_id, role, person, now) or ""

    print("\nWeb pages (signed links, as the messages carry them):")
    pages = [
        ("case 2, therapist T100's close-out page", open_case, RecipientRole.therapist, "T100"),
        ("case 2, supervisor T200's page", open_case, RecipientRole.supervisor, "T200"),
        ("case 2, the client's page (3 choices)", open_case, RecipientRole.client, "C200"),
        ("case 1, the client's page (materials)", closed, RecipientRole.client, "C100"),
    ]
    for label, case_id, role, person in pages:
        print(f"  {label + ':':<42} {url(case_id, role, person)}")


def write_demo_calendar(path: Path, now: datetime, run_id: str) -> Path:
    """The practice calendar for `demo --calendar`: today's sessions (Alex's started a minute
    ago and has no check-in; Robin checked in), and Robin's session tomorrow cancelled now,
    inside 24 hours (a late cancellation for the fee decision)."""
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=1)

    def event(uid: str, at: datetime, client: str, *extra: str) -> str:
        stamp = at.strftime("%Y%m%dT%H%M%SZ")
        lines = [f"UID:{uid}", f"DTSTAMP:{now:%Y%m%dT%H%M%SZ}", f"DTSTART:{stamp}"]
        lines += ["DURATION:PT50M", "SUMMARY:Session", f"DESCRIPTION:client:{client}", *extra]
        return "BEGIN:VEVENT\r\n" + "\r\n".join(lines) + "\r\nEND:VEVENT"

    events = [
        event(f"{run_id}-alex", start, "C100"),
        event(f"{run_id}-robin", start - timedelta(minutes=1), "C200", "CATEGORIES:CHECKED-IN"),
        event(
            f"{run_id}-robin-tomorrow",
            start + timedelta(hours=20),
            "C200",
            "STATUS:CANCELLED",
            f"LAST-MODIFIED:{now:%Y%m%dT%H%M%SZ}",
        ),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Missed Session Outreach//demo//EN\r\n"
        + "\r\n".join(events)
        + "\r\nEND:VCALENDAR\r\n"
    )
    return path


async def run_calendar_demo(
    client: Client,
    settings: Settings,
    service: CaseService,
    keep_running: bool,
    links: PageLinks | None = None,
) -> None:
    """Cases opened by the practice calendar: a Temporal Schedule sweeps a sample .ics."""
    calendars = CalendarService(service.store, settings, service)
    now = datetime.now(UTC)
    run_id = uuid.uuid4().hex[:6]
    feed = write_demo_calendar(ROOT / "data" / "demo-calendar.ics", now, run_id)
    source = {"source_id": "demo", "kind": "ics", "location": str(feed), "mode": "presumed"}
    await calendars.add(source, None, now)
    print(f"calendar source 'demo' (presumed mode): {feed}")
    state = await ensure_sweep_schedule(client, settings.temporal_task_queue, timedelta(seconds=10))
    print(f"schedule {SCHEDULE_ID} {state}: a sweep every 10s (Web UI: Schedules)")
    await client.get_schedule_handle(SCHEDULE_ID).trigger()
    case_id = case_id_for(appointment_id_for("demo", f"{run_id}-alex", None))
    handle = client.get_workflow_handle(case_id, result_type=Resolution)
    for _ in range(120):  # the schedule's first sweep, a moment after the trigger
        [row] = await calendars.sources()
        if row.last_read_at is not None and row.last_read_at > now:
            print(f"[calendar] first sweep: {row.last_summary}")
            break
        await asyncio.sleep(0.5)
    await _follow(handle, Stage.awaiting_therapist, "calendar case")
    print(f"\nWeb UI, the calendar's case: {service.ui_link(client.namespace, case_id)}")
    if links is not None:
        close_out = links.url(case_id, RecipientRole.therapist, "T100", datetime.now(UTC))
        print(f"Close-out page of the calendar's case (therapist T100): {close_out}")
    print(
        f"Web UI, the schedule: {settings.temporal_ui_url}/namespaces/{client.namespace}/schedules"
    )
    if keep_running:
        print("\nServer, worker and schedule keep running (Ctrl-C stops them).")
        await asyncio.Event().wait()


async def run_demo(settings: Settings, keep_running: bool, from_calendar: bool = False) -> None:
    if from_calendar:  # the worker's sweep opens the calendar's cases on the demo policy
        demo_policy = str(ROOT / "policies" / "demo.toml")
        settings = settings.model_copy(update={"calendar_policy_file": demo_policy})
    env = None
    if os.environ.get("TEMPORAL_ADDRESS"):
        client: Client = await connect()
        await register_search_attributes(client)  # an existing server may not have them yet
    else:
        print("starting the Temporal dev server (Web UI on http://localhost:8233) ...")
        env = await start_dev_server(ROOT / "data")
        client = env.client
    host = settings.web_host
    port = free_port(host, settings.web_port)
    if "public_base_url" not in settings.model_fields_set:  # the pages where the demo serves them
        settings = settings.model_copy(update={"public_base_url": f"http://{host}:{port}"})
    store = await open_store(settings)
    service = CaseService(store, settings, client)
    links = page_links(settings)
    app = create_app(settings, PageDeps(service, links, settings))
    providers = build_providers(settings)
    print(f"channels: {describe_providers(providers)}")
    print(f"history: {describe_encryption(payload_keys())}")
    summary = await import_directory_csv(store, ROOT / "samples" / "directory.csv")
    print(f"sample directory: {summary.therapists} therapists, {summary.clients} clients")
    policy = load_policy(ROOT / "policies" / "demo.toml")
    run_id = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    try:
        async with serving(app, host, port), build_worker(client, settings, store, providers):
            print(f"web pages: {links.base_url} (the links below)")
            if from_calendar:
                await run_calendar_demo(client, settings, service, keep_running, links)
                return
            cases = []
            for client_id in ("C100", "C200"):
                opened = await service.open(
                    appointment_id=f"demo-{run_id}-{client_id}",
                    client_id=client_id,
                    scheduled_start=now,
                    policy=policy,
                )
                cases.append(client.get_workflow_handle(opened.case_id, result_type=Resolution))
                print(f"opened {opened.case_id} (client {client_id}, policy {policy.name})")
            first, second = cases
            await _follow(first, Stage.awaiting_therapist, "case 1")
            print("[case 1] the therapist reports back: client reached and safe")
            answer = await service.close_out(
                first.id,
                {
                    "outcome": "reached_safe",
                    "note": "Reached by phone after the emergency contact passed on the message; "
                    "client is safe, had a family matter.",
                    "follow_up_plan": "Keep next week's session; reminder text the day before.",
                    "fee": {"decision": "waive", "reason": "family emergency"},
                    "by": "T100",
                    "materials": "Until next week: five minutes of the breathing exercise each "
                    "morning, and the sleep diary we talked about.",
                },
            )
            print(f"[case 1] {answer}")
            resolution = await first.result()
            print()
            print(render_resolution(resolution))
            print()
            await _follow(second, Stage.awaiting_therapist, "case 2")
            print(f"\nWeb UI, case 1 (closed): {service.ui_link(client.namespace, first.id)}")
            print(f"Web UI, case 2 (open):   {service.ui_link(client.namespace, second.id)}")
            print_page_links(links, first.id, second.id)
            if keep_running:
                print(
                    "\nServer, worker and web pages keep running (Ctrl-C stops them). Close "
                    "case 2 on its close-out page above, or with:\n"
                    f"  .venv/bin/python starter.py reached {second.id} --outcome reached_safe "
                    '--note "..." --plan "..." --fee waive --fee-reason "..."'
                )
                await asyncio.Event().wait()
    finally:
        await store.close()
        if env is not None:
            await env.shutdown()
