"""The command line: open, answer, inspect and demo missed-session cases.

    python starter.py trigger --appointment A1 --client C100 \
        --start 2026-11-23T15:00-05:00
    python starter.py reached A1 --outcome reached_safe --note "..." --plan "..." \
        --fee waive --fee-reason "..."
    python starter.py show A1 | list | stuck --older-than 2h | directory import FILE.csv | demo

CASE arguments accept the appointment id or the full case id (missed-session-<appointment>).
Every command goes through the case service (service/cases.py), which checks input before
anything is sent; every error is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from pydantic import ValidationError

from models.answers import CLOSE_OUT_OUTCOMES
from models.case import Resolution, Stage
from models.durations import format_duration, parse_duration
from models.policy import PolicyError, load_policy
from models.report import render_resolution, render_status
from service.calendar_sweep import CalendarError, CalendarService
from service.cases import CaseError, CaseListing, CaseService
from service.integrations import IntegrationError, IntegrationService
from settings import Settings
from store.case_store import CaseStore
from store.directory_csv import DirectoryImportError, import_directory_csv
from store.errors import StoreError
from store.secrets import SecretsKeyError
from temporal_env.codec import PayloadKeyError
from temporal_env.connect import connect_config
from temporal_env.process import exit_now
from temporal_env.schedule import SCHEDULE_ID, ensure_sweep_schedule
from temporal_env.search_attributes import register_search_attributes

DEFAULT_POLICY = Path(__file__).parent / "policies" / "default.toml"


class UserError(Exception):
    """A problem with the user's input: printed as one clear line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line like every other error (argparse prints
    the usage and the error on lines of their own), with the user's text escaped."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {_escaped(message)} (see {self.prog} --help)")


def _setting_errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])).upper()}: {str(e['msg']).removeprefix('Value error, ')}"
        for e in exc.errors(include_url=False, include_input=False)
    )


def _escaped(text: str) -> str:
    """Text from outside in a one-line message: control characters and text that is not
    valid Unicode (a command-line argument that is not UTF-8) escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


async def open_store(settings: Settings) -> CaseStore:
    store = CaseStore.from_url(settings.database_url)
    await store.create_schema()
    return store


@asynccontextmanager
async def case_service(settings: Settings) -> AsyncIterator[CaseService]:
    """The case service over the configured store; Temporal is connected when first needed."""
    store = await open_store(settings)
    try:
        yield CaseService(store, settings)
    finally:
        await store.close()


# ---------------------------------------------------------------------- opening cases
async def cmd_trigger(args: argparse.Namespace, settings: Settings) -> None:
    try:
        start = datetime.fromisoformat(args.start)
    except ValueError:
        raise UserError(f"--start: not an ISO 8601 date-time: {args.start!r}") from None
    if start.tzinfo is None:
        raise UserError("--start needs a time zone offset, e.g. 2026-11-23T15:00-05:00")
    policy = load_policy(args.policy)
    async with case_service(settings) as service:
        opened = await service.open(
            appointment_id=args.appointment,
            client_id=args.client,
            therapist_id=args.therapist,
            scheduled_start=start,
            policy=policy,
        )
        namespace = (await service.temporal()).namespace
    state = "opened" if opened.new else "already exists (not opened twice)"
    print(f"case {opened.case_id} {state}\n  {service.ui_link(namespace, opened.case_id)}")


# ---------------------------------------------------------------------- answering cases
def answer_command(
    update: str, fields: Callable[[argparse.Namespace], dict[str, Any]]
) -> Callable[[argparse.Namespace, Settings], Awaitable[None]]:
    async def run(args: argparse.Namespace, settings: Settings) -> None:
        async with case_service(settings) as service:
            if update == "add_note":
                print(await service.note(args.case, fields(args)))
            else:
                print(await service.answer(args.case, update, fields(args)))

    return run


def _reached_fields(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "outcome": args.outcome,
        "note": args.note,
        "follow_up_plan": args.plan,
        "fee": {"decision": args.fee, "reason": args.fee_reason or ""},
        "by": args.by,
        "materials": args.materials,
    }


# ---------------------------------------------------------------------- inspecting cases
async def cmd_show(args: argparse.Namespace, settings: Settings) -> None:
    async with case_service(settings) as service:
        shown = await service.status(args.case)
        if isinstance(shown, Resolution):
            print(render_resolution(shown))
            return
        print(render_status(shown))
        namespace = (await service.temporal()).namespace
        print(f"  {service.ui_link(namespace, shown.case_id)}")


def _unreconciled_warning(listing: CaseListing) -> None:
    if not listing.reconciled:
        print("(Temporal not reachable: listed from the case store alone, not reconciled)")


async def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    async with case_service(settings) as service:
        listing = await service.list_cases(open_only=not args.all)
    _unreconciled_warning(listing)
    now = datetime.now(UTC)
    if not listing.cases:
        print("no open cases" if not args.all else "no cases")
    for case in listing.cases:
        if case.closed_at is None:
            state = f"{case.stage.value:<30} open {format_duration(now - case.opened_at)}"
        else:
            state = f"closed: {case.outcome or '-':<22} {_t(case.closed_at)}"
        print(f"{case.case_id:<40} {state:<48} {case.therapist_id}")


async def cmd_stuck(args: argparse.Namespace, settings: Settings) -> None:
    limit = duration_arg(args.older_than, "--older-than")
    namespace = str(connect_config().get("namespace") or "default")
    async with case_service(settings) as service:
        listing = await service.stuck(limit)
    _unreconciled_warning(listing)
    now = datetime.now(UTC)
    if not listing.cases:
        print(f"no case has stayed in one stage for {format_duration(limit)} or more")
    for case in listing.cases:
        print(
            f"{case.case_id}  {case.stage.value} for {format_duration(now - case.stage_since)}\n"
            f"  {service.ui_link(namespace, case.case_id)}"
        )


async def cmd_stats(args: argparse.Namespace, settings: Settings) -> None:
    """The figures the worker publishes as metrics, read from the case store."""
    store = await open_store(settings)
    try:
        stats = await store.case_stats(datetime.now(UTC))
    finally:
        await store.close()
    if args.json:
        print(stats.model_dump_json(indent=2))
        return
    print(f"cases opened: {stats.cases_opened}")
    for stage in Stage:
        if stage is not Stage.closed:
            print(f"  open, {stage.value}: {stats.cases_open.get(stage.value, 0)}")
    for outcome, count in sorted(stats.cases_closed.items()):
        print(f"  closed, {outcome}: {count}")
    waiting = stats.oldest_awaiting_therapist_seconds
    print(f"oldest case awaiting its therapist: {_age(waiting)}")
    print("messages:")
    for m in stats.messages:
        print(f"  {m.channel:<6} {m.result:<18} {m.count}")
    print(f"failed messages: {stats.failed_messages()}")
    print(
        f"unconfirmed messages: {stats.unconfirmed_messages} (oldest open case with one: "
        f"{_age(stats.oldest_open_unconfirmed_seconds)})"
    )


def _age(seconds: float | None) -> str:
    return "none" if seconds is None else format_duration(timedelta(seconds=int(seconds)))


def duration_arg(value: str, flag: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UserError(f"{flag}: {exc}") from None


def _t(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------------- setup
async def cmd_directory_import(args: argparse.Namespace, settings: Settings) -> None:
    store = await open_store(settings)
    try:
        summary = await import_directory_csv(store, args.file)
    except DirectoryImportError as exc:
        raise UserError(f"{args.file}: nothing imported\n  " + "\n  ".join(exc.errors)) from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"{_escaped(args.file)}: cannot read the file: {reason}") from None
    finally:
        await store.close()
    print(f"imported {summary.therapists} therapists and {summary.clients} clients")


async def cmd_setup(args: argparse.Namespace, settings: Settings) -> None:
    async with case_service(settings) as service:
        added = await register_search_attributes(await service.temporal())
    print("case store ready; search attributes added: " + (", ".join(added) or "none needed"))


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn  # only the web service needs it

    from service.page_links import page_links
    from web.app import ServeError, create_app
    from web.pages import PageDeps
    from web.serve import redact_access_log

    async with case_service(settings) as service:
        try:
            links = page_links(settings)
            app = create_app(settings, PageDeps(service, links, settings))
        except (ServeError, PayloadKeyError, ValueError) as exc:  # e.g. a bad webhook key
            raise UserError(str(exc)) from None
        host, port = args.host or settings.web_host, args.port or settings.web_port
        base = settings.public_base_url.rstrip("/")
        print(f"pages: {base}/case/<token> (close-out), {base}/r/<token> (client)")
        if settings.message_link_base() is None:
            print(
                f"messages carry no page links: PUBLIC_BASE_URL ({base}) is not reachable from "
                "a phone (set it, or MESSAGE_LINKS=always)"
            )
        if settings.payload_keys is None:
            print("payloads are not encrypted (no PAYLOAD_KEYS): no codec server")
        else:
            print(
                f"codec server: {base}/codec (Web UI: temporal server start-dev "
                f"--ui-codec-endpoint {base}/codec; send the token as a Bearer token)"
            )
        print(
            f"webhooks: Twilio SMS {base}/twilio/sms, call status {base}/twilio/call-status, "
            f"SendGrid events {base}/sendgrid/events; practice systems: {base}/api/v1/events "
            f"(schema: {base}/api/docs)"
        )
        redact_access_log()
        config = uvicorn.Config(app, host=host, port=port, log_level="info")
        await uvicorn.Server(config).serve()


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    from demo import run_demo  # the demo pulls in the dev server; only load it when asked

    await run_demo(
        settings, keep_running=sys.stdin.isatty() and not args.exit, from_calendar=args.calendar
    )


# ---------------------------------------------------------------------- the practice calendar
@asynccontextmanager
async def calendar_service(settings: Settings) -> AsyncIterator[CalendarService]:
    async with case_service(settings) as cases:
        yield CalendarService(cases.store, settings, cases)


async def cmd_calendar_add(args: argparse.Namespace, settings: Settings) -> None:
    password = None
    if args.password_env:
        password = os.environ.get(args.password_env)
        if not password:
            raise UserError(f"--password-env: the variable {args.password_env} is not set")
    mapping: dict[str, Any] = {"therapist_id": args.therapist}
    if args.client_token:
        mapping["client_token"] = args.client_token
    if args.no_show_category:
        mapping["no_show_categories"] = args.no_show_category
    if args.check_in_category:
        mapping["check_in_categories"] = args.check_in_category
    config = {
        "source_id": args.id,
        "kind": "caldav" if args.caldav else "ics",
        "location": args.caldav or args.ics,
        "mode": args.mode,
        "username": args.username,
        "floating_time_zone": args.floating_tz or settings.practice_time_zone,
        "mapping": mapping,
    }
    async with calendar_service(settings) as calendars:
        source_id = await calendars.add(config, password, datetime.now(UTC))
    secret = "; password stored encrypted" if password else ""
    print(f"calendar source {source_id} saved ({args.mode} mode){secret}")


async def cmd_calendar_list(args: argparse.Namespace, settings: Settings) -> None:
    async with calendar_service(settings) as calendars:
        rows = await calendars.sources()
    if not rows:
        print("no calendar sources: add one with `starter.py calendar add`")
    for row in rows:
        source = row.source
        secret = ""
        if row.has_secret:
            secret = ", password stored" if source.username else ", address sealed"
        print(
            f"{source.source_id:<20} {source.kind.value:<7} {source.mode.value:<9} "
            f"{shown_location(source.location)}{secret}"
        )


async def cmd_calendar_remove(args: argparse.Namespace, settings: Settings) -> None:
    async with calendar_service(settings) as calendars:
        await calendars.remove(args.id)
    print(f"calendar source {args.id} removed (its cases stay as they are)")


async def cmd_calendar_status(args: argparse.Namespace, settings: Settings) -> None:
    now = datetime.now(UTC)
    stale_after = timedelta(seconds=3 * settings.calendar_sweep_every_seconds)
    async with calendar_service(settings) as calendars:
        rows = await calendars.sources()
    if not rows:
        print("no calendar sources")
    for row in rows:
        read = row.last_read_at
        if read is None:
            freshness = "never read"
        else:
            age = now - read
            stale = "  STALE" if age > stale_after else ""
            freshness = f"last read {_t(read)} ({format_duration(age)} ago){stale}"
        print(f"{row.source.source_id}: {freshness}")
        if row.last_summary:
            print(f"  last sweep: {row.last_summary}")
        if row.last_error and (read is None or (row.last_error_at or now) > read):
            print(f"  last error {_t(row.last_error_at or now)}: {row.last_error}")


async def cmd_calendar_schedule(args: argparse.Namespace, settings: Settings) -> None:
    every = duration_arg(args.every, "--every")
    if not timedelta(seconds=10) <= every <= timedelta(hours=1):
        raise UserError("--every: between 10s and 1h")
    async with case_service(settings) as service:
        client = await service.temporal()
        state = await ensure_sweep_schedule(client, settings.temporal_task_queue, every)
    print(f"schedule {SCHEDULE_ID} {state}: a calendar sweep every {format_duration(every)}")


async def cmd_sweep(args: argparse.Namespace, settings: Settings) -> None:
    async with calendar_service(settings) as calendars:
        reports = await calendars.sweep(datetime.now(UTC))
    if not reports:
        print("no calendar sources to sweep")
    for report in reports:
        print(f"{report.source_id}: {report.summary()}")
        for appointment, late in report.opened.items():
            print(f"  opened {appointment} ({format_duration(timedelta(seconds=late))} late)")
        for label, ids in (
            ("check-in reported", report.arrivals),
            ("cancellation reported", report.cancellations),
            ("late cancellation recorded", report.late_cancellations),
            ("skipped", report.skipped),
        ):
            for item in ids:
                print(f"  {label}: {item}")


# ---------------------------------------------------------------------- practice systems
async def cmd_integration(args: argparse.Namespace, settings: Settings) -> None:
    async with case_service(settings) as cases:
        integrations = IntegrationService(cases, settings)
        if args.integration_command == "add":
            token = await integrations.add(args.id, datetime.now(UTC))
            print(
                f"integration {args.id} added. Its token, shown this once (only its hash is "
                f"stored):\n  {token}\nSend it as `Authorization: Bearer <token>` to "
                f"{settings.public_base_url.rstrip('/')}/api/v1/events"
            )
        elif args.integration_command == "remove":
            await integrations.remove(args.id)
            print(f"integration {args.id} removed: its token no longer works")
        else:
            rows = await integrations.list()
            if not rows:
                print("no integrations: add one with `starter.py integration add NAME`")
            for integration_id, created in rows:
                print(f"{integration_id:<30} added {_t(created)}")


def shown_location(location: str) -> str:
    """A source's location without credentials or a query string (a feed's secret token)."""
    parts = urlsplit(location)
    if not parts.scheme or not parts.netloc:
        return location
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}" + ("?..." if parts.query else "")


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="starter.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("trigger", help="open a case for a missed session (idempotent)")
    p.add_argument("--appointment", required=True)
    p.add_argument("--client", required=True)
    p.add_argument("--therapist", help="default: the client's therapist")
    p.add_argument("--start", required=True, help="scheduled start, ISO 8601 with offset")
    p.add_argument("--policy", default=str(DEFAULT_POLICY))
    p.set_defaults(run=cmd_trigger)

    for name, help_text, update, fields in (
        ("arrived", "the client arrived", "client_arrived", lambda a: {"note": a.note}),
        (
            "responded",
            "the client called, texted or emailed back",
            "client_responded",
            lambda a: {"via": a.via, "note": a.note},
        ),
        (
            "acknowledge",
            "therapist: I'm on it (pauses reminders)",
            "acknowledged",
            lambda a: {"by": a.by, "note": a.note},
        ),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("case")
        p.add_argument("--note", default="")
        if name == "responded":
            p.add_argument("--via", default="phone")
        if name == "acknowledge":
            p.add_argument("--by", default="therapist")
        p.set_defaults(run=answer_command(update, fields))

    p = sub.add_parser("reached", help="therapist: close the case with the client's status")
    p.add_argument("case")
    p.add_argument("--outcome", required=True, help=", ".join(o.value for o in CLOSE_OUT_OUTCOMES))
    p.add_argument("--note", required=True)
    p.add_argument("--plan", required=True, help="follow-up plan")
    p.add_argument("--fee", required=True, choices=["charge", "waive"])
    p.add_argument("--fee-reason", default="")
    p.add_argument("--by", default="therapist")
    p.add_argument(
        "--materials", default="", help="between-session materials shown on the client's page"
    )
    p.set_defaults(run=answer_command("client_reached", _reached_fields))

    p = sub.add_parser("note", help="add documentation (an addendum once the case is closed)")
    p.add_argument("case")
    p.add_argument("--author", required=True)
    p.add_argument("--text", required=True)
    p.set_defaults(run=answer_command("add_note", lambda a: {"author": a.author, "text": a.text}))

    p = sub.add_parser("show", help="a case's timeline (or its documented resolution)")
    p.add_argument("case")
    p.set_defaults(run=cmd_show)

    p = sub.add_parser("list", help="open cases with stage and age")
    p.add_argument("--all", action="store_true", help="include closed cases")
    p.set_defaults(run=cmd_list)

    p = sub.add_parser("stuck", help="open cases whose stage has not advanced for a while")
    p.add_argument("--older-than", required=True, help="e.g. 30m, 2h, 1d")
    p.set_defaults(run=cmd_stuck)

    p = sub.add_parser("stats", help="case and message figures (what the worker's metrics say)")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(run=cmd_stats)

    p = sub.add_parser("directory", help="manage the client/therapist directory")
    dsub = p.add_subparsers(dest="directory_command", required=True)
    d = dsub.add_parser("import", help="load therapists and clients from a CSV file")
    d.add_argument("file")
    d.set_defaults(run=cmd_directory_import)

    p = sub.add_parser("calendar", help="the practice calendars that open cases on their own")
    csub = p.add_subparsers(dest="calendar_command", required=True)
    c = csub.add_parser("add", help="add (or replace) a calendar source")
    c.add_argument("id", help="a short name, e.g. front-desk (at most 24 characters)")
    where = c.add_mutually_exclusive_group(required=True)
    where.add_argument("--ics", help="an .ics file path or an https URL (export/subscription)")
    where.add_argument("--caldav", help="a CalDAV calendar URL")
    c.add_argument("--mode", required=True, choices=["marked", "presumed"])
    c.add_argument("--username", help="CalDAV user")
    c.add_argument("--password-env", help="the environment variable holding the password")
    c.add_argument("--therapist", help="the calendar's owner: therapist of every session in it")
    c.add_argument("--floating-tz", help="zone of times without one (default: the practice's)")
    c.add_argument("--client-token", help='prefix naming the client, default "client:"')
    c.add_argument("--no-show-category", action="append", help="repeatable")
    c.add_argument("--check-in-category", action="append", help="repeatable")
    c.set_defaults(run=cmd_calendar_add)
    c = csub.add_parser("list", help="the calendar sources")
    c.set_defaults(run=cmd_calendar_list)
    c = csub.add_parser("remove", help="stop reading a calendar source")
    c.add_argument("id")
    c.set_defaults(run=cmd_calendar_remove)
    c = csub.add_parser("status", help="each source's last successful read and how stale it is")
    c.set_defaults(run=cmd_calendar_status)
    c = csub.add_parser("schedule", help="create or update the sweep's Temporal Schedule")
    c.add_argument("--every", default="60s")
    c.set_defaults(run=cmd_calendar_schedule)

    p = sub.add_parser("sweep", help="sweep the calendars now and print what was done")
    p.add_argument("--once", action="store_true", required=True)
    p.set_defaults(run=cmd_sweep)

    p = sub.add_parser("integration", help="practice systems that report events (the API)")
    isub = p.add_subparsers(dest="integration_command", required=True)
    i = isub.add_parser("add", help="add one and print its token (once)")
    i.add_argument("id", help="a short name, e.g. ehr (ASCII letters, digits, _ . : -)")
    i = isub.add_parser("list", help="the integrations")
    i = isub.add_parser("remove", help="remove one (its token stops working)")
    i.add_argument("id")
    p.set_defaults(run=cmd_integration)

    p = sub.add_parser("serve", help="the web service: the pages, the codec server for the Web UI")
    p.add_argument("--host", help="default WEB_HOST (127.0.0.1)")
    p.add_argument("--port", type=int, help="default WEB_PORT (8000)")
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("setup", help="create the case store and register search attributes")
    p.set_defaults(run=cmd_setup)

    p = sub.add_parser("demo", help="a whole case on the embedded dev server, no credentials")
    p.add_argument("--exit", action="store_true", help="exit at the end even in a terminal")
    p.add_argument(
        "--calendar", action="store_true", help="cases opened by a sample practice calendar"
    )
    p.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help: printed, nothing to run
            return exc.code if isinstance(exc.code, int) else 0
        try:
            settings = Settings()
        except ValidationError as exc:  # never its message: it quotes the values (secrets)
            problems = _setting_errors(exc)
            raise UserError(f"configuration (environment or .env): {problems}") from None
        asyncio.run(args.run(args, settings))
    except (
        UserError,
        CaseError,
        CalendarError,
        StoreError,
        PolicyError,
        SecretsKeyError,
        PayloadKeyError,
        IntegrationError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    exit_now(main())
