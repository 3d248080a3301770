"""The client's page, from the link in an outreach text or email: three choices ("I'm OK",
"I'd like to reschedule", "Please call me"), each answering the case (`client_responded` with
that intent, which the therapist sees). No account, nothing clinical: the practice's name and
call-back number, never the therapist's name, the client's name or why we ask. Once the
therapist's close-out lists between-session materials, the same link shows them.

The link is the client's, not single-use: they may change their answer while the case is open.
An answer after the case closed is kept as a dated addendum to its documented resolution."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from models.answers import INTENT_LABELS, ClientIntent
from models.case import RecipientRole, Resolution
from models.links import CLIENT_PATH, LinkAudience, LinkClaim
from service.cases import CaseError
from store.rows import CaseRow
from web.pages import PageDeps, PageProblem, case_of, claim_of, render, same_origin

CHOICES = [(intent.value, INTENT_LABELS[intent]) for intent in ClientIntent]
VIA = "web link"


def client_router(deps: PageDeps) -> APIRouter:
    router = APIRouter()

    @router.get(CLIENT_PATH + "{token}")
    async def page(request: Request, token: str) -> Response:
        _, row = await _client_case(deps, token)
        return await _page(request, deps, token, row)

    @router.post(CLIENT_PATH + "{token}")
    async def answer(request: Request, token: str) -> Response:
        same_origin(request, deps)
        _, row = await _client_case(deps, token)
        form = await request.form()
        try:
            intent = ClientIntent(str(form.get("intent", "")))
        except ValueError:
            return await _page(request, deps, token, row, error="Please choose one.", code=422)
        _, status = await case_of(deps, row.case_id)
        try:
            if isinstance(status, Resolution) or row.closed_at is not None:
                await deps.service.note(
                    row.case_id,
                    {
                        "author": "client (web link)",
                        "text": f"Client answered on their page after the case closed: "
                        f'"{INTENT_LABELS[intent]}".',
                    },
                )
            elif status.client_intent is not intent:  # a double tap or a reload: once
                await deps.service.answer(
                    row.case_id, "client_responded", {"via": VIA, "intent": intent.value}
                )
        except CaseError:
            raise PageProblem(
                503,
                "We could not take your answer just now",
                f"Please call or text us at {deps.settings.practice_callback_number}.",
            ) from None
        return render(
            request,
            "client_thanks.html",
            title="Thank you",
            choice=INTENT_LABELS[intent],
            call_me=intent is ClientIntent.call_me,
            practice=deps.settings.practice_name,
            callback=deps.settings.practice_callback_number,
            back=f"{CLIENT_PATH}{token}",
        )

    return router


async def _client_case(deps: PageDeps, token: str) -> tuple[LinkClaim, CaseRow]:
    claim = claim_of(deps, token, LinkAudience.client)
    row = await deps.service.store.get_case(claim.case_id)
    if row is None or claim.role is not RecipientRole.client or claim.person_id != row.client_id:
        raise PageProblem(403, "This link is not valid", "The link is incomplete or was changed.")
    return claim, row


async def _page(
    request: Request,
    deps: PageDeps,
    token: str,
    row: CaseRow,
    error: str | None = None,
    code: int = 200,
) -> Response:
    _, status = await case_of(deps, row.case_id)
    closed = isinstance(status, Resolution) or row.closed_at is not None
    materials = status.client_materials if isinstance(status, Resolution) else ""
    intent = status.client_intent
    return render(
        request,
        "client.html",
        status=code,
        title=deps.settings.practice_name,
        practice=deps.settings.practice_name,
        callback=deps.settings.practice_callback_number,
        choices=CHOICES,
        answered=INTENT_LABELS[intent] if intent else None,
        closed=closed,
        materials=materials,
        error=error,
        action=f"{CLIENT_PATH}{token}",
    )
