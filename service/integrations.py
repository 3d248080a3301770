"""Practice systems (a practice-management system, an EHR) that report no-shows, check-ins and
cancellations, each with a bearer token of its own.

Only the SHA-256 of a token is stored: it is printed once, when the integration is added, and
a copied database cannot be used to report events. (A token is 256 random bits, so a fast hash
is enough: there is nothing to guess that a slow hash would protect.)

Every event acts through the case service, as the CLI and the calendar sweep do, and is
remembered by its id and by what it means (`models.integration_events.event_effect`), so a
system that retries, or reports the same fact twice under two ids, changes nothing twice.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from models.case import case_id_for
from models.edge import EdgeError, at_edge, check_ids, checked_id
from models.integration_events import (
    CancellationEvent,
    CheckInEvent,
    EventAnswer,
    NoShowEvent,
    event_effect,
)
from models.policy import EscalationPolicy, PolicyError, load_policy
from service.cases import CaseError, CaseService
from settings import Settings

log = logging.getLogger(__name__)

TOKEN_PREFIX = "mso_"


class IntegrationError(Exception):
    """A problem with an integration or one of its events (one line, the product's words)."""


class EventInFlight(IntegrationError):
    """The same event is being handled by another request right now."""


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class IntegrationService:
    def __init__(self, cases: CaseService, settings: Settings) -> None:
        self._cases = cases
        self._store = cases.store
        self._settings = settings

    # ------------------------------------------------------------------ integrations
    async def add(self, integration_id: str, now: datetime) -> str:
        """Add an integration; returns its token, which is never shown again."""
        try:
            at_edge(_IntegrationName, {"integration_id": integration_id})
        except EdgeError as exc:
            raise IntegrationError(str(exc)) from None
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        if not await self._store.add_integration(integration_id, token_sha256(token), now):
            raise IntegrationError(
                f"integration {integration_id} exists: remove it first to issue a new token"
            )
        return token

    async def remove(self, integration_id: str) -> None:
        try:
            check_ids(integration_id=integration_id)
        except EdgeError as exc:
            raise IntegrationError(str(exc)) from None
        if not await self._store.remove_integration(integration_id):
            raise IntegrationError(f"no such integration: {integration_id}")

    async def list(self) -> list[tuple[str, datetime]]:
        return await self._store.list_integrations()

    async def authenticate(self, token: str) -> str | None:
        """The integration this bearer token belongs to, or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = token_sha256(token)
        integration = await self._store.integration_for_token(digest)
        # The lookup is by an index on the digest; compare again in constant time all the same.
        if integration is None or not hmac.compare_digest(digest, token_sha256(token)):
            return None
        return integration

    # ------------------------------------------------------------------ events
    async def report(
        self,
        integration_id: str,
        event: NoShowEvent | CheckInEvent | CancellationEvent,
        now: datetime,
    ) -> EventAnswer:
        """Act on one event, once. A repeat returns the first delivery's answer."""
        key = f"{integration_id}/{event.event_id}"
        claim = await self._store.claim_event(key, event_effect(event), now)
        if claim.state == "done" and claim.answer is not None:
            first = EventAnswer.model_validate(claim.answer)
            return first.model_copy(update={"event_id": event.event_id, "repeat": True})
        if claim.state != "new":
            raise EventInFlight("the same event is being handled right now; retry shortly")
        try:
            answer = await self._act(integration_id, event, now)
        except BaseException:
            await self._store.release_event(key)  # not done: a retry may act on it
            raise
        await self._store.finish_event(key, answer.model_dump(mode="json"))
        log.info("integration %s event: %s", integration_id, answer.result)
        return answer

    async def _act(
        self,
        integration_id: str,
        event: NoShowEvent | CheckInEvent | CancellationEvent,
        now: datetime,
    ) -> EventAnswer:
        if isinstance(event, NoShowEvent):
            return await self._no_show(integration_id, event, now)
        case_id = case_id_for(event.appointment_id)
        if await self._store.get_case(case_id) is None:
            return EventAnswer(
                event_id=event.event_id,
                result="no_case",
                message="no case is open for this appointment; nothing to do",
            )
        if isinstance(event, CheckInEvent):
            said = await self._cases.answer(
                case_id, "client_arrived", {"note": event.note or f"Checked in ({integration_id})."}
            )
        else:
            moved = event.moved_to.isoformat() if event.moved_to else None
            said = await self._cases.answer(
                case_id,
                "session_cancelled",
                {"moved_to": moved, "by": integration_id, "note": event.note},
            )
        return EventAnswer(
            event_id=event.event_id, result="answered", case_id=case_id, message=said
        )

    async def _no_show(self, integration_id: str, event: NoShowEvent, now: datetime) -> EventAnswer:
        opened = await self._cases.open(
            appointment_id=event.appointment_id,
            client_id=event.client_id,
            therapist_id=event.therapist_id,
            scheduled_start=event.scheduled_start,
            policy=self._policy(),
            now=now,
        )
        if not opened.new:
            return EventAnswer(
                event_id=event.event_id,
                result="already_open",
                case_id=opened.case_id,
                message="the case of this appointment was opened before; not opened twice",
            )
        text = f"Opened by the integration {integration_id} (event {event.event_id})."
        if event.note:
            text += f" {event.note}"
        try:  # documentation only: the case is open whatever happens here
            await self._cases.answer(opened.case_id, "add_note", {"author": "system", "text": text})
        except CaseError:
            log.warning("could not document who opened the case", extra={"case_id": opened.case_id})
        return EventAnswer(
            event_id=event.event_id,
            result="opened",
            case_id=opened.case_id,
            message="case opened",
        )

    def _policy(self) -> EscalationPolicy:
        """Cases opened by a practice system follow the policy of cases the calendar opens."""
        try:
            return load_policy(self._settings.calendar_policy_file)
        except PolicyError as exc:
            raise IntegrationError(str(exc)) from None


class _IntegrationName(BaseModel):
    integration_id: Annotated[str, AfterValidator(checked_id)] = Field(min_length=1)
