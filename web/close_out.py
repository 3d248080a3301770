"""The therapist's close-out page, one tap from the notification (a supervisor's link opens the
same page for the supervisor): the timeline, the attendance chart, the close-out form and an
"I'm on it" button. Both answers go through the case service as Updates, so a rejected answer
leaves nothing behind, and the page shows what the case said.

A link is used once the case is closed: it then gets 410 and changes nothing (derived from the
case itself, nothing else is stored)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from models.answers import CLOSE_OUT_OUTCOMES, CaseOutcome, ClientReached, FeeChoice
from models.case import CaseStatus, RecipientRole, Resolution
from models.edge import EDGE
from models.links import STAFF_PATH, LinkAudience, LinkClaim
from service.cases import CaseError
from store.rows import CaseRow
from web.attendance_chart import attendance_chart
from web.pages import PageDeps, PageProblem, case_of, claim_of, render, same_origin
from web.timeline import client_answer, timeline

OUTCOME_LABELS = {
    CaseOutcome.reached_safe: "Reached: the client is safe",
    CaseOutcome.rescheduled: "Reached and rescheduled",
    CaseOutcome.referred_to_crisis_services: "Referred to crisis services",
    CaseOutcome.emergency_services_contacted: "Emergency services contacted",
    CaseOutcome.unable_to_reach: "Unable to reach the client",
    CaseOutcome.other: "Other (explain in the note)",
}
FIELDS = ("outcome", "note", "follow_up_plan", "materials", "fee_decision", "fee_reason")
DEFAULT_WINDOW_DAYS = 90  # cases opened before the status carried the policy's window


def close_out_router(deps: PageDeps) -> APIRouter:
    router = APIRouter()

    @router.get(STAFF_PATH + "{token}")
    async def page(request: Request, token: str) -> Response:
        claim, row, status = await _open_case(deps, token)
        return await _page(request, deps, token, claim, row, status, {}, {})

    @router.post(STAFF_PATH + "{token}")
    async def close(request: Request, token: str) -> Response:
        same_origin(request, deps)
        claim, row, status = await _open_case(deps, token)
        form = await request.form()
        sent = {name: form.get(name, "") for name in FIELDS}
        values = {name: value if isinstance(value, str) else "" for name, value in sent.items()}
        answer = _close_out(values, claim.person_id)
        errors = _field_errors(answer)
        for name, value in sent.items():
            if not isinstance(value, str):  # a file: str() of it would be taken as the text
                errors[name] = "expected text, not a file"
        if errors:
            return await _page(request, deps, token, claim, row, status, values, errors, 422)
        try:
            said = await deps.service.close_out(row.case_id, answer)
        except CaseError as exc:
            return _refused(request, str(exc))
        return render(request, "answered.html", title="Case closed", said=said, back=None)

    @router.post(STAFF_PATH + "{token}/acknowledge")
    async def acknowledge(request: Request, token: str) -> Response:
        same_origin(request, deps)
        claim, row, _status = await _open_case(deps, token)
        try:
            said = await deps.service.answer(row.case_id, "acknowledged", {"by": claim.person_id})
        except CaseError as exc:
            return _refused(request, str(exc))
        back = f"{STAFF_PATH}{token}"
        return render(request, "answered.html", title="Noted: you're on it", said=said, back=back)

    return router


async def _open_case(deps: PageDeps, token: str) -> tuple[LinkClaim, CaseRow, CaseStatus]:
    """The link's case, still open, and the link's holder still its therapist (or that
    therapist's supervisor); otherwise a problem page that changes nothing."""
    claim = claim_of(deps, token, LinkAudience.staff)
    row, status = await case_of(deps, claim.case_id)
    await _authorised(deps, claim, row)
    if isinstance(status, Resolution):
        raise PageProblem(
            410,
            "This case is already closed",
            f"Case {row.case_id}: {deps.service.closed_line(status)}. Nothing was changed.",
        )
    if row.closed_at is not None:  # ended outside the procedure (terminated by hand)
        raise PageProblem(
            410,
            "This case is already closed",
            f"Case {row.case_id} ended as {row.outcome or 'closed'}. Nothing was changed.",
        )
    if status.closing is not None:
        c = status.closing
        raise PageProblem(
            410,
            "This case is already closed",
            f"Case {row.case_id} is closing: {c.outcome.value} by {c.by} at {deps.when(c.at)}. "
            "Nothing was changed.",
        )
    return claim, row, status


async def _authorised(deps: PageDeps, claim: LinkClaim, row: CaseRow) -> None:
    """The directory as it is now decides: a therapist reassigned, or a supervisor replaced,
    since the link was sent can no longer use it."""
    if claim.role is RecipientRole.therapist and claim.person_id == row.therapist_id:
        return
    if claim.role is RecipientRole.supervisor:
        therapist = await deps.service.store.get_therapist(row.therapist_id)
        if therapist is not None and therapist.supervisor_id == claim.person_id:
            return
    raise PageProblem(
        403, "This link is not valid", "This link is not for the therapist of this case."
    )


def _close_out(values: dict[str, str], by: str) -> dict[str, Any]:
    """The form as the close-out Update's payload; `by` is the link's holder, never a field."""
    fee: dict[str, Any] = {"reason": values["fee_reason"]}
    if values["fee_decision"]:
        fee["decision"] = values["fee_decision"]
    answer: dict[str, Any] = {
        "note": values["note"],
        "follow_up_plan": values["follow_up_plan"],
        "materials": values["materials"],
        "fee": fee,
        "by": by,
    }
    if values["outcome"]:
        answer["outcome"] = values["outcome"]
    return answer


_FORM_FIELD = {
    ("outcome",): "outcome",
    ("note",): "note",
    ("follow_up_plan",): "follow_up_plan",
    ("materials",): "materials",
    ("fee", "decision"): "fee_decision",
    ("fee", "reason"): "fee_reason",
    ("fee",): "fee_reason",  # "a fee waiver needs a reason"
}
_REQUIRED = {
    "outcome": "choose an outcome",
    "note": "write a note",
    "follow_up_plan": "write the follow-up plan",
    "fee_decision": "choose charge or waive",
}


def _field_errors(answer: dict[str, Any]) -> dict[str, str]:
    """The same checks as the case service and the workflow's validator (the close-out model
    at the edge), each error put beside its field."""
    errors: dict[str, str] = {}
    try:
        ClientReached.model_validate(answer, context=EDGE)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            loc = tuple(str(p) for p in error["loc"])
            name = _FORM_FIELD.get(loc) or _FORM_FIELD.get(loc[:1]) or "form"
            if error["type"] in ("missing", "string_too_short") and name in _REQUIRED:
                message = _REQUIRED[name]
            else:
                message = str(error["msg"]).removeprefix("Value error, ")
            errors.setdefault(name, message)
    return errors


async def _page(
    request: Request,
    deps: PageDeps,
    token: str,
    claim: LinkClaim,
    row: CaseRow,
    status: CaseStatus,
    values: dict[str, str],
    errors: dict[str, str],
    code: int = 200,
) -> Response:
    window = status.attendance_window_days or DEFAULT_WINDOW_DAYS
    until = row.scheduled_start
    sessions = await deps.service.store.attendance_between(
        row.client_id, until - timedelta(days=window), until
    )
    return render(
        request,
        "close_out.html",
        status=code,
        title=f"Case {row.case_id}",
        case=row,
        session=deps.when(row.scheduled_start),
        role=claim.role.value,
        stage=status.stage.value.replace("_", " "),
        entries=timeline(row.opened_at, status, deps.short),
        time_zone=deps.settings.practice_time_zone,
        client_answer=client_answer(status),
        acknowledged_until=(
            deps.when(status.acknowledged_until) if status.acknowledged_until else None
        ),
        emergency_contact_note=status.emergency_contact_note,
        chart=attendance_chart(sessions, until, window),
        outcomes=[(o.value, OUTCOME_LABELS[o]) for o in CLOSE_OUT_OUTCOMES],
        fee_choices=[(FeeChoice.charge.value, "Charge"), (FeeChoice.waive.value, "Waive")],
        values=values,
        errors=errors,
        action=f"{STAFF_PATH}{token}",
    )


def _refused(request: Request, said: str) -> Response:
    """The case refused the answer (closed meanwhile, or not running): nothing was applied."""
    closed = "already closed" in said or "closing" in said
    unreachable = "no Temporal server reachable" in said
    return render(
        request,
        "problem.html",
        status=410 if closed else 503 if unreachable else 409,
        title="This case is already closed" if closed else "The case did not take the answer",
        message=f"{said}. Nothing was changed.",
    )
