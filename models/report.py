"""Plain-text renderings of a case for the command line: status timelines and resolutions."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from models.answers import INTENT_LABELS
from models.case import Attempt, CaseStatus, NoteEntry, RejectedSignal, Resolution
from models.edge import printable


def local_label(moment: datetime, time_zone: str) -> str:
    """'2026-11-24 14:05 EST (America/New_York)': a time a person can read, its zone named."""
    local = moment.astimezone(ZoneInfo(time_zone))
    return f"{local.strftime('%Y-%m-%d %H:%M %Z')} ({time_zone})"


def _t(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z")


def _cents(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency}"


def attempt_line(attempt: Attempt) -> str:
    dry = "  [DRY RUN: nothing sent]" if attempt.dry_run else ""
    detail = f" ({attempt.detail})" if attempt.detail and not attempt.dry_run else ""
    return (
        f"  {_t(attempt.at)}  {attempt.channel.value:<5} -> {attempt.recipient_role.value:<17} "
        f"{attempt.result.value}{detail}{dry}"
    )


def note_line(note: NoteEntry) -> str:
    return f"  {_t(note.at)}  [{note.author}] {note.text}"


def render_status(status: CaseStatus) -> str:
    lines = [
        f"Case {status.case_id}",
        f"  stage: {status.stage.value} since {_t(status.stage_since)}",
        f"  escalation level: {status.escalation_level}",
    ]
    if status.next_action:
        when = f" at {_t(status.next_action.at)}" if status.next_action.at else ""
        lines.append(f"  next: {status.next_action.description}{when}")
    if status.acknowledged_until:
        lines.append(f"  acknowledged; reminders paused until {_t(status.acknowledged_until)}")
    if status.client_intent is not None:
        lines.append(f"  client said: {INTENT_LABELS[status.client_intent]} (their page)")
    lines += _timeline(status.attempts, status.notes, status.rejected_signals)
    return "\n".join(lines)


def render_resolution(resolution: Resolution) -> str:
    fee = resolution.fee
    review = resolution.attendance
    flag = "  ** FLAGGED: discuss attendance at the next session **" if review.flagged else ""
    lines = [
        f"Documented resolution of {resolution.case_id}"
        + ("   [DRY RUN: no message was really sent]" if resolution.dry_run else ""),
        f"  session:   {_t(resolution.scheduled_start)} (appointment {resolution.appointment_id})",
        f"  client:    {resolution.client_id}   therapist: {resolution.therapist_id}",
        f"  opened:    {_t(resolution.opened_at)}   closed: {_t(resolution.closed_at)}",
        f"  policy:    {resolution.policy_name}",
        f"  outcome:   {resolution.outcome.value} (closed by {resolution.closed_by})",
        f"  note:      {resolution.note}",
        f"  plan:      {resolution.follow_up_plan}",
        f"  fee:       {_cents(fee.charged_cents, fee.currency)} charged "
        f"(policy fee {_cents(fee.policy_fee_cents, fee.currency)}; {fee.reason})",
        f"  attendance: {review.misses_in_window} missed in the last {review.window_days} days "
        f"(threshold {review.threshold}){flag}"
        + (
            f"; {review.late_cancellations_in_window} late cancellation(s)"
            if review.late_cancellations_in_window
            else ""
        ),
        f"  emergency contact: {resolution.emergency_contact_note or 'not needed'}",
    ]
    if resolution.client_intent is not None:
        lines.append(f"  client said: {INTENT_LABELS[resolution.client_intent]} (their page)")
    if resolution.client_materials:
        lines.append(f"  materials: {resolution.client_materials} (shown on the client's page)")
    lines += _timeline(resolution.attempts, resolution.notes, resolution.rejected_signals)
    if resolution.addenda:
        lines += ["Addenda (documented after closing):", *map(note_line, resolution.addenda)]
    return "\n".join(lines)


def _timeline(
    attempts: list[Attempt], notes: list[NoteEntry], rejected: list[RejectedSignal]
) -> list[str]:
    """Every attempt, note and rejected signal: the documentation part of a case."""
    lines = ["Attempts:", *([attempt_line(a) for a in attempts] or ["  (none)"])]
    lines += ["Notes:", *([note_line(n) for n in notes] or ["  (none)"])]
    # A signal's name is whatever its sender typed (the Web UI, the CLI): escaped, so a name
    # with a terminal escape in it cannot rewrite the screen of whoever reads the case.
    lines += [f"  REJECTED {printable(r.signal)} at {_t(r.at)}: {r.error}" for r in rejected]
    return lines
