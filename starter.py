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
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.answers import CLOSE_OUT_OUTCOMES
from models.case import Resolution
from models.durations import format_duration, parse_duration
from models.policy import PolicyError, load_policy
from models.report import render_resolution, render_status
from service.cases import CaseError, CaseListing, CaseService
from settings import Settings
from store.case_store import CaseStore
from store.directory_csv import DirectoryImportError, import_directory_csv
from store.errors import StoreError
from temporal_env.connect import connect_config
from temporal_env.process import exit_now
from temporal_env.search_attributes import register_search_attributes

DEFAULT_POLICY = Path(__file__).parent / "policies" / "default.toml"


class UserError(Exception):
    """A problem with the user's input: printed as one clear line, exit status 2."""


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
    try:
        limit = parse_duration(args.older_than)
    except ValueError as exc:
        raise UserError(f"--older-than: {exc}") from None
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
        raise UserError(str(exc)) from exc
    finally:
        await store.close()
    print(f"imported {summary.therapists} therapists and {summary.clients} clients")


async def cmd_setup(args: argparse.Namespace, settings: Settings) -> None:
    async with case_service(settings) as service:
        added = await register_search_attributes(await service.temporal())
    print("case store ready; search attributes added: " + (", ".join(added) or "none needed"))


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    from demo import run_demo  # the demo pulls in the dev server; only load it when asked

    await run_demo(settings, keep_running=sys.stdin.isatty() and not args.exit)


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="starter.py", description=__doc__.split("\n\n")[0])
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

    p = sub.add_parser("directory", help="manage the client/therapist directory")
    dsub = p.add_subparsers(dest="directory_command", required=True)
    d = dsub.add_parser("import", help="load therapists and clients from a CSV file")
    d.add_argument("file")
    d.set_defaults(run=cmd_directory_import)

    p = sub.add_parser("setup", help="create the case store and register search attributes")
    p.set_defaults(run=cmd_setup)

    p = sub.add_parser("demo", help="a whole case on the embedded dev server, no credentials")
    p.add_argument("--exit", action="store_true", help="exit at the end even in a terminal")
    p.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(args.run(args, Settings()))
    except (UserError, CaseError, StoreError, PolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    exit_now(main())
