"""The practice systems' API (`POST /api/v1/events`): a practice-management system or EHR
reports a no-show (the case opens), a check-in or a cancellation, with its bearer token.

Documented by the OpenAPI schema the service serves (`/openapi.json`, `/api/docs`). A body
that does not fit is answered 422 with the field named (FastAPI's validation of
`models.integration_events`); the same event twice answers the same and changes nothing twice.
"""

# No `from __future__ import annotations`: FastAPI resolves the dependencies' annotations at
# runtime, and they name functions local to `router`.
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from models.integration_events import EventAnswer, PracticeEvent
from service.cases import CaseError
from service.integrations import EventInFlight, IntegrationError, IntegrationService
from store.errors import StoreError
from web.context import WebContext

EVENTS_PATH = "/api/v1/events"

_bearer = HTTPBearer(
    auto_error=False,
    description="The integration's token (`starter.py integration add NAME` prints it once).",
)


def router(context: WebContext) -> APIRouter:
    routes = APIRouter(tags=["Practice systems"])

    async def service() -> IntegrationService:
        return IntegrationService(await context.cases(), context.settings)

    async def integration(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        integrations: Annotated[IntegrationService, Depends(service)],
    ) -> str:
        found = None
        if credentials is not None and credentials.scheme.lower() == "bearer":
            found = await integrations.authenticate(credentials.credentials)
        if found is None:
            raise HTTPException(
                status_code=401,
                detail="a valid integration token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return found

    @routes.post(
        EVENTS_PATH,
        response_model=EventAnswer,
        summary="Report a no-show, a check-in or a cancellation",
        responses={
            401: {"description": "No valid integration token."},
            409: {"description": "The case refused it (e.g. already closed), or in flight."},
            503: {"description": "Temporal or the case store unreachable: retry later."},
        },
    )
    async def report_event(
        event: Annotated[PracticeEvent, Body()],
        integration_id: Annotated[str, Depends(integration)],
        integrations: Annotated[IntegrationService, Depends(service)],
    ) -> EventAnswer:
        """`no_show` opens the appointment's case (once, ever); `checked_in` tells its case the
        client came (in the grace wait it closes silently); `cancelled` tells it the session
        was cancelled or moved (`moved_to`). An event id seen before answers what it did then,
        with `repeat: true`."""
        try:
            return await integrations.report(integration_id, event, await context.now())
        except EventInFlight as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        except (CaseError, IntegrationError) as exc:
            status = 503 if str(exc).startswith("no Temporal server") else 409
            raise HTTPException(status_code=status, detail=str(exc)) from None
        except StoreError:
            raise HTTPException(status_code=503, detail="case store unavailable") from None

    return routes
