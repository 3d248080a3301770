"""The command line: open, answer, inspect and demo missed-session cases.

    python starter.py trigger --appointment A1 --client C100 --therapist T100 \
        --start 2026-11-23T15:00-05:00
    python starter.py reached A1 --outcome reached_safe --note "..." --plan "..." \
        --fee waive --fee-reason "..."
    python starter.py show A1 | list | stuck --older-than 2h | directory import FILE.csv | demo

CASE arguments accept the appointment id or the full case id (missed-session-<appointment>).
Input is validated with the same pydantic models the workflow uses, before anything is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from models.case import MissedSessionInput, case_id_for
from models.durations import format_duration, parse_duration
from models.policy import load_policy
from models.report import render_resolution, render_status
from models.signals import (
    Acknowledged,
    AddNote,
    ClientArrived,
    ClientReached,
    ClientResponded,
)
from settings import Settings
from store.case_store import CaseStore
from store.directory_csv import DirectoryImportError, import_directory_csv
from temporal_env.connect import connect, connect_config
from temporal_env.process import exit_now
from temporal_env.search_attributes import register_search_attributes
from workflows.missed_session import MissedSessionWorkflow

DEFAULT_POLICY = Path(__file__).parent / "policies" / "default.toml"


class UserError(Exception):
    """A problem with the user's input: printed as one clear line, exit status 2."""


def case_id_of(reference: str) -> str:
    return reference if reference.startswith("missed-session-") else case_id_for(reference)


def ui_link(settings: Settings, namespace: str, case_id: str) -> str:
    return f"{settings.temporal_ui_url}/namespaces/{namespace}/workflows/{case_id}"


async def open_store(settings: Settings) -> CaseStore:
    store = CaseStore.from_url(settings.database_url)
    await store.create_schema()
    return store


def validated(model: type[BaseModel], **fields: Any) -> BaseModel:
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
        )
        raise UserError(problems) from exc


# ---------------------------------------------------------------------- opening cases
async def trigger_case(
    client: Client, store: CaseStore, settings: Settings, case: MissedSessionInput
) -> tuple[str, bool]:
    """Start the case once per appointment, ever. Returns (case id, newly started)."""
    if await store.get_client(case.client_id) is None:
        raise UserError(f"unknown client id {case.client_id!r}: import the directory first")
    if await store.get_therapist(case.therapist_id) is None:
        raise UserError(f"unknown therapist id {case.therapist_id!r}")
    try:
        await client.start_workflow(
            MissedSessionWorkflow.run,
            case,
            id=case.case_id,
            task_queue=settings.temporal_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Missed session, appointment {case.appointment_id}",
            static_details=(
                f"Therapist {case.therapist_id}; policy {case.policy.name}; "
                f"scheduled {case.scheduled_start.isoformat()}"
            ),
        )
    except WorkflowAlreadyStartedError:
        return case.case_id, False
    return case.case_id, True


async def cmd_trigger(args: argparse.Namespace, settings: Settings) -> None:
    try:
        start = datetime.fromisoformat(args.start)
    except ValueError as exc:
        raise UserError(f"--start: not an ISO 8601 date-time: {args.start!r}") from exc
    if start.tzinfo is None:
        raise UserError("--start needs a time zone offset, e.g. 2026-11-23T15:00-05:00")
    try:
        policy = load_policy(args.policy)
    except (OSError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    case = validated(
        MissedSessionInput,
        appointment_id=args.appointment,
        client_id=args.client,
        therapist_id=args.therapist,
        scheduled_start=start,
        policy=policy,
    )
    assert isinstance(case, MissedSessionInput)
    store = await open_store(settings)
    try:
        client = await connect()
        case_id, new = await trigger_case(client, store, settings, case)
    finally:
        await store.close()
    state = "opened" if new else "already exists (not opened twice)"
    print(f"case {case_id} {state}\n  {ui_link(settings, client.namespace, case_id)}")


# ---------------------------------------------------------------------- answering cases
async def send_signal(reference: str, signal: str, payload: BaseModel) -> str:
    client = await connect()
    case_id = case_id_of(reference)
    try:
        await client.get_workflow_handle(case_id).signal(signal, payload)
    except RPCError as exc:
        raise UserError(f"case {case_id}: {exc.message}") from exc
    return case_id


def signal_command(
    signal: str, model: type[BaseModel], fields: Callable[[argparse.Namespace], dict[str, Any]]
) -> Callable[[argparse.Namespace, Settings], Awaitable[None]]:
    async def run(args: argparse.Namespace, settings: Settings) -> None:
        payload = validated(model, **fields(args))
        case_id = await send_signal(args.case, signal, payload)
        print(f"{signal} sent to {case_id}")

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
    case_id = case_id_of(args.case)
    store = await open_store(settings)
    try:
        resolution = await store.get_resolution(case_id)
        if resolution is not None:
            print(render_resolution(resolution))
            return
        client = await connect()
        handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(case_id)
        try:
            status = await handle.query(MissedSessionWorkflow.case_status)
        except RPCError as exc:
            raise UserError(f"case {case_id}: {exc.message}") from exc
        print(render_status(status))
        print(f"  {ui_link(settings, client.namespace, case_id)}")
    finally:
        await store.close()


async def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    store = await open_store(settings)
    try:
        cases = await store.list_cases(open_only=not args.all)
    finally:
        await store.close()
    now = datetime.now(UTC)
    if not cases:
        print("no open cases")
    for case in cases:
        age = format_duration(now - case.opened_at)
        print(f"{case.case_id:<40} {case.stage.value:<30} open {age:<12} {case.therapist_id}")


async def cmd_stuck(args: argparse.Namespace, settings: Settings) -> None:
    try:
        limit = parse_duration(args.older_than)
    except ValueError as exc:
        raise UserError(f"--older-than: {exc}") from exc
    store = await open_store(settings)
    try:
        cases = await store.list_cases(open_only=True)
    finally:
        await store.close()
    namespace = str(connect_config().get("namespace") or "default")
    now = datetime.now(UTC)
    stuck = [c for c in cases if now - c.stage_since >= limit]
    if not stuck:
        print(f"no case has stayed in one stage for {format_duration(limit)} or more")
    for case in stuck:
        print(
            f"{case.case_id}  {case.stage.value} for {format_duration(now - case.stage_since)}\n"
            f"  {ui_link(settings, namespace, case.case_id)}"
        )


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
    store = await open_store(settings)
    await store.close()
    added = await register_search_attributes(await connect())
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
    p.add_argument("--therapist", required=True)
    p.add_argument("--start", required=True, help="scheduled start, ISO 8601 with offset")
    p.add_argument("--policy", default=str(DEFAULT_POLICY))
    p.set_defaults(run=cmd_trigger)

    for name, help_text, model, fields in (
        ("arrived", "the client arrived", ClientArrived, lambda a: {"note": a.note}),
        (
            "responded",
            "the client called, texted or emailed back",
            ClientResponded,
            lambda a: {"via": a.via, "note": a.note},
        ),
        (
            "acknowledge",
            "therapist: I'm on it (pauses reminders)",
            Acknowledged,
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
        signal = {"arrived": "client_arrived", "responded": "client_responded"}.get(
            name, "acknowledged"
        )
        p.set_defaults(run=signal_command(signal, model, fields))

    p = sub.add_parser("reached", help="therapist: close the case with the client's status")
    p.add_argument("case")
    p.add_argument("--outcome", required=True, help="reached_safe, rescheduled, ...")
    p.add_argument("--note", required=True)
    p.add_argument("--plan", required=True, help="follow-up plan")
    p.add_argument("--fee", required=True, choices=["charge", "waive"])
    p.add_argument("--fee-reason", default="")
    p.add_argument("--by", default="therapist")
    p.set_defaults(run=signal_command("client_reached", ClientReached, _reached_fields))

    p = sub.add_parser("note", help="add documentation to a case")
    p.add_argument("case")
    p.add_argument("--author", required=True)
    p.add_argument("--text", required=True)
    p.set_defaults(
        run=signal_command("add_note", AddNote, lambda a: {"author": a.author, "text": a.text})
    )

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
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    exit_now(main())
