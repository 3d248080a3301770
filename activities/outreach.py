"""Calls, texts and emails, each sent at most once per case step.

The idempotency protocol, per message key "<case id>/<step>" (see DESIGN.md):

1. a row in state `sending` is written before the provider is called;
2. `accepted` + the provider's id right after the provider took the message;
3. `done` + the result when final (for a call: after the call ended).

A retry that finds `done` returns the recorded attempt; `accepted` resumes (a call is polled, not
placed again); `retry` (the provider answered 429/5xx, or could not be reached) sends again;
`sending` means a previous try died or timed out while the provider may have had the message,
so it is recorded `unconfirmed` and NOT resent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.case import Attempt, AttemptResult, RecipientRole
from models.directory import Channel, ClientProfile, Therapist
from models.durations import format_duration
from models.messages import Message, MessageFacts, PracticeInfo, compose
from models.outreach import OutreachRequest
from providers.base import (
    PermanentDeliveryError,
    ProviderReceipt,
    Providers,
    TransientDeliveryError,
)
from store.case_store import CaseStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    name: str
    phone: str | None
    email: str | None


class UnknownRecipientError(Exception):
    """The directory has no usable record for this recipient (deleted, or consent withdrawn)."""


class OutreachActivities:
    def __init__(
        self,
        store: CaseStore,
        providers: Providers,
        practice: PracticeInfo,
        call_poll_interval: float = 5.0,
    ) -> None:
        self._store = store
        self._providers = providers
        self._practice = practice
        self._poll_interval = call_poll_interval

    @activity.defn(name="send_sms")
    async def send_sms(self, request: OutreachRequest) -> Attempt:
        return await self._deliver(request, self._send_sms)

    @activity.defn(name="send_email")
    async def send_email(self, request: OutreachRequest) -> Attempt:
        return await self._deliver(request, self._send_email)

    @activity.defn(name="place_call")
    async def place_call(self, request: OutreachRequest) -> Attempt:
        """Call with a short spoken message (left after the beep on a machine), then poll the
        call until Twilio reports its outcome."""
        return await self._deliver(request, self._start_call)

    async def _deliver(
        self,
        request: OutreachRequest,
        send: Callable[[str, Message, OutreachRequest], Awaitable[ProviderReceipt]],
    ) -> Attempt:
        at = _attempt_time()
        previous = await self._store.get_attempt(request.key)
        if previous is not None and previous.state == "done":
            log.info("already final, not repeating", extra={"step": request.step})
            return previous.as_attempt()
        if previous is not None and previous.state == "sending":
            return await self._finish(
                request,
                AttemptResult.unconfirmed,
                "an earlier try was interrupted mid-send; not resent to avoid a duplicate",
                previous.provider_id,
                previous.dry_run,
                at,
            )
        if previous is not None and previous.state == "accepted":
            return await self._after_accept(request, previous.provider_id, at)

        client = await self._store.get_client(request.client_id)
        therapist = await self._store.get_therapist(request.therapist_id)
        try:
            recipient = await self._recipient(request, client, therapist)
        except UnknownRecipientError as exc:
            return await self._finish(request, AttemptResult.failed, str(exc), None, False, at)
        address = recipient.email if request.channel is Channel.email else recipient.phone
        if not address:
            detail = f"no {request.channel.value} address on file"
            return await self._finish(
                request, AttemptResult.invalid_recipient, detail, None, False, at
            )
        facts = self._facts(request, recipient, client, therapist)
        message = compose(request.purpose, request.channel, facts)

        await self._store.start_attempt(request, at)
        try:
            receipt = await send(address, message, request)
        except PermanentDeliveryError as exc:
            return await self._finish(request, exc.result, exc.detail, None, False, at)
        except TransientDeliveryError as exc:
            if not exc.may_have_been_sent:  # the row says it is safe to send again
                await self._store.mark_retryable(request.key, str(exc))
            raise  # Temporal retries with backoff
        if receipt.dry_run:
            return await self._finish(
                request, AttemptResult.dry_run, receipt.detail, None, True, at
            )
        await self._store.mark_accepted(request.key, receipt.provider_id)
        return await self._after_accept(request, receipt.provider_id, at)

    async def _after_accept(
        self, request: OutreachRequest, provider_id: str | None, at: datetime
    ) -> Attempt:
        if request.channel is not Channel.voice:
            return await self._finish(request, AttemptResult.sent, "", provider_id, False, at)
        if provider_id is None:
            raise ApplicationError("accepted call has no call id", non_retryable=True)
        while True:
            try:
                outcome = await self._providers.voice.call_outcome(provider_id)
            except PermanentDeliveryError as exc:  # e.g. the call vanished: record, move on
                return await self._finish(request, exc.result, exc.detail, provider_id, False, at)
            if outcome is not None:
                return await self._finish(
                    request, outcome.result, outcome.detail, provider_id, False, at
                )
            activity.heartbeat(provider_id)
            await asyncio.sleep(self._poll_interval)

    async def _finish(
        self,
        request: OutreachRequest,
        result: AttemptResult,
        detail: str,
        provider_id: str | None,
        dry_run: bool,
        at: datetime,
    ) -> Attempt:
        """Record the final result (a no-op returning the stored one if already final)."""
        if await self._store.get_attempt(request.key) is None:
            await self._store.start_attempt(request, at)
        attempt = await self._store.finish_attempt(
            request.key, result, detail, provider_id, dry_run, at
        )
        log.info(
            "outreach attempt recorded",
            extra={"case_id": request.case_id, "step": request.step, "result": attempt.result},
        )
        return attempt

    async def _send_sms(
        self, to: str, message: Message, request: OutreachRequest
    ) -> ProviderReceipt:
        return await self._providers.sms.send_sms(to, message.body)

    async def _send_email(
        self, to: str, message: Message, request: OutreachRequest
    ) -> ProviderReceipt:
        return await self._providers.email.send_email(
            to, message.subject, message.body, request.key
        )

    async def _start_call(
        self, to: str, message: Message, request: OutreachRequest
    ) -> ProviderReceipt:
        return await self._providers.voice.start_call(to, message.body)

    async def _recipient(
        self, request: OutreachRequest, client: ClientProfile | None, therapist: Therapist | None
    ) -> Recipient:
        """Who receives this message, re-checking consent against the directory as it is now."""
        role = request.recipient_role
        if role in (RecipientRole.client, RecipientRole.emergency_contact):
            if client is None:
                raise UnknownRecipientError("client is no longer in the directory")
            if role is RecipientRole.client:
                if request.channel not in client.reachable_channels():
                    raise UnknownRecipientError(f"no {request.channel.value} consent on record")
                return Recipient(client.first_name, client.phone, client.email)
            contact = client.emergency_contact
            if contact is None or not contact.consent_to_contact:
                raise UnknownRecipientError("no recorded consent to contact the emergency contact")
            return Recipient(contact.name, contact.phone, contact.email)
        if therapist is None:
            raise UnknownRecipientError("therapist is no longer in the directory")
        if role is RecipientRole.supervisor:
            supervisor = (
                await self._store.get_therapist(therapist.supervisor_id)
                if therapist.supervisor_id
                else None
            )
            if supervisor is None:
                raise UnknownRecipientError("the therapist has no supervisor on file")
            return Recipient(supervisor.name, supervisor.phone, supervisor.email)
        return Recipient(therapist.name, therapist.phone, therapist.email)

    def _facts(
        self,
        request: OutreachRequest,
        recipient: Recipient,
        client: ClientProfile | None,
        therapist: Therapist | None,
    ) -> MessageFacts:
        return MessageFacts(
            practice=self._practice,
            case_id=request.case_id,
            client_first_name=client.first_name if client else "",
            client_time_zone=client.time_zone if client else "UTC",
            detailed_ok=bool(client and client.detailed_voicemail_ok),
            therapist_name=therapist.name if therapist else "your provider",
            recipient_name=recipient.name,
            scheduled_start=request.scheduled_start,
            waited=format_duration(request.waited) if request.waited else "",
        )


def _attempt_time() -> datetime:
    """When this try started, by the Temporal server's clock (so time-skipping tests see the
    skipped time, and production sees real time)."""
    return activity.info().current_attempt_scheduled_time
