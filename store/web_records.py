"""The case store's tables for the web service: integrations and the events they reported,
texts clients sent, provider requests already handled, and email addresses that bounced.

A mixin of `CaseStore` (it uses the store's transactions and dialect upserts). Every write is
idempotent by key, like the rest of the store: a webhook delivered twice changes nothing twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import delete, or_, select, update

from models.case import AttemptResult
from models.directory import Channel, ClientProfile, ConsentChange
from store import prepared
from store.errors import stored
from store.rows import CaseRow
from store.schema import (
    AttemptTable,
    CaseTable,
    ClientTable,
    EmailSuppressionTable,
    InboundMessageTable,
    IntegrationEventTable,
    IntegrationTable,
    WebhookReceiptTable,
)
from store.threads import StoreConnection

InboundKind = Literal["reply", "stop", "start", "help"]


@dataclass(frozen=True)
class EventClaim:
    """What the store knew of an integration event when it was reported: `new` (this request
    handles it), `done` (reported before: `answer` is what it did) or `pending` (another
    request is handling it right now)."""

    state: Literal["new", "done", "pending"]
    answer: dict[str, Any] | None = None


class InboundMessage(BaseModel):
    message_sid: str
    received_at: datetime
    from_number: str
    body: str
    kind: str
    client_id: str | None
    therapist_id: str | None
    case_id: str | None
    state: str
    outcome: str


class WebRecords:
    _begin: Callable[[], AbstractAsyncContextManager[StoreConnection]]
    _insert: Callable[[Any], Any]
    _first: Callable[..., Any]
    _all: Callable[..., Any]
    _record_consent_change: Callable[..., Awaitable[bool]]

    # ------------------------------------------------------------------ integrations
    async def add_integration(self, integration_id: str, token_sha256: str, at: datetime) -> bool:
        """False if an integration of that id exists (its token is never replaced silently)."""
        stmt = self._insert(IntegrationTable).values(
            integration_id=integration_id, token_sha256=token_sha256, created_at=at
        )
        async with self._begin() as conn:
            result = await conn.execute(stmt.on_conflict_do_nothing())
        return bool(result.rowcount)

    async def list_integrations(self) -> list[tuple[str, datetime]]:
        query = select(IntegrationTable.integration_id, IntegrationTable.created_at).order_by(
            IntegrationTable.integration_id
        )
        return [(r["integration_id"], r["created_at"]) for r in await self._all(query)]

    async def remove_integration(self, integration_id: str) -> bool:
        async with self._begin() as conn:
            result = await conn.execute(
                delete(IntegrationTable).where(IntegrationTable.integration_id == integration_id)
            )
        return bool(result.rowcount)

    async def integration_for_token(self, token_sha256: str) -> str | None:
        query = select(IntegrationTable.integration_id).where(
            IntegrationTable.token_sha256 == token_sha256
        )
        row = await self._first(query)
        return row["integration_id"] if row else None

    async def claim_event(self, key: str, effect: str | None, at: datetime) -> EventClaim:
        """Claim an integration event before acting on it: by its id, and by what it means
        (`effect`), so neither a retried request nor the same fact under a new id acts twice."""
        async with self._begin() as conn:
            clauses = [IntegrationEventTable.key == key]
            if effect is not None:
                clauses.append(IntegrationEventTable.effect == effect)
            query = select(IntegrationEventTable.state, IntegrationEventTable.answer).where(
                or_(*clauses)
            )
            seen = (await conn.execute(query)).mappings().first()
            if seen is not None:
                if seen["state"] == "done":
                    return EventClaim("done", seen["answer"])
                return EventClaim("pending")
            stmt = self._insert(IntegrationEventTable).values(
                key=key, effect=effect, state="pending", received_at=at, answer=None
            )
            result = await conn.execute(stmt.on_conflict_do_nothing())
        return EventClaim("new" if result.rowcount else "pending")

    async def finish_event(self, key: str, answer: dict[str, Any]) -> None:
        async with self._begin() as conn:
            await conn.execute(
                update(IntegrationEventTable)
                .where(IntegrationEventTable.key == key)
                .values(state="done", answer=answer)
            )

    async def release_event(self, key: str) -> None:
        """The event could not be handled (e.g. Temporal unreachable): a retry may try again."""
        async with self._begin() as conn:
            await conn.execute(
                delete(IntegrationEventTable).where(
                    IntegrationEventTable.key == key, IntegrationEventTable.state == "pending"
                )
            )

    # ------------------------------------------------------------------ texts from clients
    async def clients_with_phone(self, phone: str) -> list[ClientProfile]:
        """Every client whose number is `phone` (E.164; a family may share one). The
        directory is a practice's, so a scan of it is cheap and needs no second copy of the
        number outside the record."""
        rows = await self._all(select(ClientTable.record))
        clients = [stored(ClientProfile, r["record"]) for r in rows]
        return sorted((c for c in clients if c.phone == phone), key=lambda client: client.client_id)

    async def cases_of_clients(
        self, client_ids: Iterable[str], open_only: bool = True
    ) -> list[CaseRow]:
        """Cases of these clients, the most recent session first."""
        ids = sorted(set(client_ids))
        if not ids:
            return []
        query = (
            select(CaseTable)
            .where(CaseTable.client_id.in_(ids))
            .order_by(CaseTable.scheduled_start.desc(), CaseTable.opened_at.desc())
        )
        if open_only:
            query = query.where(CaseTable.closed_at.is_(None))
        return [stored(CaseRow, dict(r)) for r in await self._all(query)]

    async def get_inbound(self, message_sid: str) -> InboundMessage | None:
        query = select(InboundMessageTable).where(InboundMessageTable.message_sid == message_sid)
        row = await self._first(query)
        return stored(InboundMessage, dict(row)) if row else None

    async def record_inbound(
        self,
        message_sid: str,
        at: datetime,
        from_number: str,
        body: str,
        kind: InboundKind,
        client_id: str | None,
        therapist_id: str | None,
    ) -> None:
        """Keep a text as it arrived (state `received`); a retry of it keeps the first row."""
        stmt = self._insert(InboundMessageTable).values(
            message_sid=message_sid,
            received_at=at,
            from_number=from_number,
            body=body,
            kind=kind,
            client_id=client_id,
            therapist_id=therapist_id,
            case_id=None,
            state="received",
            outcome="",
        )
        async with self._begin() as conn:
            await conn.execute(stmt.on_conflict_do_nothing())

    async def finish_inbound(self, message_sid: str, case_id: str | None, outcome: str) -> None:
        async with self._begin() as conn:
            await conn.execute(
                update(InboundMessageTable)
                .where(InboundMessageTable.message_sid == message_sid)
                .values(state="done", case_id=case_id, outcome=outcome)
            )

    async def inbound_for_client(self, client_id: str) -> list[InboundMessage]:
        query = (
            select(InboundMessageTable)
            .where(InboundMessageTable.client_id == client_id)
            .order_by(InboundMessageTable.received_at, InboundMessageTable.message_sid)
        )
        return [stored(InboundMessage, dict(r)) for r in await self._all(query)]

    async def restore_consent(
        self, client_id: str, channel: Channel, at: datetime, source: str
    ) -> bool:
        """Undo a withdrawal (the client replied START): consent comes back only if the last
        change on record withdrew it. A channel never consented to stays without consent: a
        carrier keyword is not the consent the practice records. Returns whether it changed."""

        def restoral(client: ClientProfile) -> ConsentChange | None:
            changes = [c for c in client.consent_changes if c.channel is channel]
            if not changes or changes[-1].granted:
                return None
            return ConsentChange(at=at, channel=channel, granted=True, source=source)

        return await self._record_consent_change(client_id, restoral)

    # ------------------------------------------------------------------ provider webhooks
    async def has_receipt(self, key: str) -> bool:
        query = select(WebhookReceiptTable.key).where(WebhookReceiptTable.key == key)
        return await self._first(query) is not None

    async def add_receipt(self, key: str, at: datetime) -> bool:
        """Remember a handled request; False if it was remembered already (a replay)."""
        stmt = self._insert(WebhookReceiptTable).values(key=key, received_at=at)
        async with self._begin() as conn:
            result = await conn.execute(stmt.on_conflict_do_nothing())
        return bool(result.rowcount)

    async def finish_call(
        self, call_sid: str, result: AttemptResult, detail: str, at: datetime
    ) -> str | None:
        """Twilio reported a call's outcome: finish its attempt (the polling activity finds it
        done and returns it). Only a call still awaited changes; returns its key."""
        async with self._begin() as conn:
            query = select(AttemptTable.key).where(
                AttemptTable.provider_id == call_sid,
                AttemptTable.channel == Channel.voice.value,
                AttemptTable.state == "accepted",
            )
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                return None
            await conn.execute(
                update(AttemptTable)
                .where(AttemptTable.key == row["key"], AttemptTable.state == "accepted")
                .values(state="done", result=result.value, detail=detail, finished_at=at)
            )
        return str(row["key"])

    async def fail_email(
        self, message_id: str, result: AttemptResult, detail: str, at: datetime
    ) -> str | None:
        """SendGrid reported an email as bounced, dropped or reported as spam: its attempt,
        recorded `sent` when SendGrid took it, becomes `result`. Returns its key."""
        async with self._begin() as conn:
            query = select(AttemptTable.key).where(
                AttemptTable.provider_id == message_id,
                AttemptTable.channel == Channel.email.value,
                or_(AttemptTable.state == "accepted", AttemptTable.result == "sent"),
            )
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                return None
            await conn.execute(
                update(AttemptTable)
                .where(AttemptTable.key == row["key"])
                .values(state="done", result=result.value, detail=detail, finished_at=at)
            )
        return str(row["key"])

    async def suppress_email(self, address: str, reason: str, at: datetime) -> None:
        """Never email `address` again (the first reason is kept)."""
        stmt = self._insert(EmailSuppressionTable).values(
            address=address.strip().lower(), reason=reason[:200], at=at
        )
        async with self._begin() as conn:
            await conn.execute(stmt.on_conflict_do_nothing())

    async def email_suppression(self, address: str) -> str | None:
        """Why `address` must not be emailed, or None."""
        row = await self._first(prepared.EMAIL_SUPPRESSION, {"b_address": address.strip().lower()})
        return row["reason"] if row else None
