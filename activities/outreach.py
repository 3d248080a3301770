"""Calls, texts and emails, each sent at most once per case step.

The idempotency protocol, per message key "<case id>/<step>" (see DESIGN.md):

1. a row in state `sending` is written before the provider is called;
2. `accepted` + the provider's id right after the provider took the message;
3. `done` + the result when final (for a call: after the call ended).

A retry that finds `done` returns the recorded attempt; `accepted` resumes (a call is polled, not
placed again); `retry` (the provider answered 429/5xx, or could not be reached) sends again;
`sending` means a previous try died or timed out while the provider may have had the message,
so it is recorded `unconfirmed` and NOT resent, unless the previous try's heartbeat says the
provider refused it (the store may have been down when that try wanted to write `retry`).
Step 1 is a compare-and-set on the row (`CaseStore.claim_attempt`): of two tries running at
once (Temporal timed one out, but it is still running), only the one holding the claim sends.

Cases send a step's messages to one recipient together (`send_messages`: a round's call, text
and email in one activity); each message follows the protocol above under its own key, claim
and entry in the activity's heartbeat. `send_sms`, `send_email` and `place_call` send one
message each, for cases opened before batching and for notices about no case.

Provider errors are retried by this activity's own clock: after the policy's `message_retry_for`
of refusals the attempt is recorded `failed` and the case moves on. Every other error (a bug, a
misconfiguration, the store unreachable) is raised for Temporal to retry until it is fixed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from models.case import Attempt, AttemptResult, Purpose, RecipientRole
from models.directory import Channel, ClientProfile, Therapist
from models.durations import format_duration
from models.links import PageLinks
from models.messages import Message, MessageFacts, PracticeInfo, compose
from models.outreach import OutreachBatch, OutreachRequest
from providers.base import (
    PermanentDeliveryError,
    ProviderReceipt,
    Providers,
    TransientDeliveryError,
)
from store.case_store import CaseStore
from store.rows import AttemptRow

log = logging.getLogger(__name__)


@dataclass
class MessageTry:
    """One message's side of an activity try: what the previous try said about it in its
    heartbeat (Temporal keeps that even when the try could not write to the store), and how
    this try says something about it now. A batch heartbeats all its messages' sayings at once,
    each under its message's key."""

    last: dict[str, Any]
    say: Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Recipient:
    name: str
    phone: str | None
    email: str | None
    person_id: str = ""  # directory id: what a page link names (never the name or address)


_ROLE_NAMES = {
    RecipientRole.client: "client",
    RecipientRole.emergency_contact: "emergency contact",
    RecipientRole.therapist: "therapist",
    RecipientRole.supervisor: "supervisor",
    RecipientRole.on_call: "on-call address",
}
_DRY_RUN_VERB = {Channel.sms: "text", Channel.email: "email", Channel.voice: "call"}


class UnknownRecipientError(Exception):
    """The directory has no usable record for this recipient (deleted, or consent withdrawn)."""

    result = AttemptResult.failed


class SuppressedAddressError(UnknownRecipientError):
    """The email address bounced, was dropped or reported our mail as spam (SendGrid's event
    webhook): recorded `invalid_recipient`, so the case stops using it."""

    result = AttemptResult.invalid_recipient


# With Twilio's status callback the outcome of a call arrives in the store (the web service's
# webhook): the activity looks there every tick and asks Twilio itself only every this many
# ticks, in case a callback was lost.
POLL_TWILIO_EVERY_WITH_CALLBACKS = 12


class OutreachActivities:
    def __init__(
        self,
        store: CaseStore,
        providers: Providers,
        practice: PracticeInfo,
        call_poll_interval: float = 5.0,
        on_call_email: str | None = None,
        practice_time_zone: str = "UTC",
        links: Callable[[], PageLinks | None] | None = None,
        call_status_callbacks: bool = False,
    ) -> None:
        self._call_status_callbacks = call_status_callbacks
        self._practice_time_zone = practice_time_zone
        self._links_factory = links
        self._links: PageLinks | None = None
        self._store = store
        self._providers = providers
        self._practice = practice
        self._poll_interval = call_poll_interval
        self._on_call_email = on_call_email

    @activity.defn(name="send_messages")
    async def send_messages(self, batch: OutreachBatch) -> list[Attempt]:
        """Every message of one step to one recipient (a round's call, text and email) side
        by side, in one activity: a third of the activities and workflow tasks of one per
        message. Each message keeps the protocol above under its own key and claim; a call is
        placed and polled here as in `place_call`.

        The activity returns once every message has finished its try. A message the provider
        refused (or one another try still holds) fails the activity after the others have
        finished, with the provider's Retry-After: Temporal's retry then returns the recorded
        messages from the store and sends only the refused one again."""
        at = _attempt_time()
        previous = _last_try()
        said: dict[str, dict[str, Any]] = {}

        def saying(key: str) -> Callable[[dict[str, Any]], None]:
            def say(details: dict[str, Any]) -> None:
                said[key] = details
                activity.heartbeat(dict(said))

            return say

        first = batch.messages[0]
        people = (
            await self._store.get_client(first.client_id),
            await self._store.get_therapist(first.therapist_id),
        )
        rows = await self._store.get_attempts([request.key for request in batch.messages])
        tasks = [
            asyncio.create_task(
                self._deliver(
                    request,
                    rows.get(request.key),
                    self._sender(request.channel),
                    MessageTry(_said_of(previous, request.key), saying(request.key)),
                    at,
                    people,
                )
            )
            for request in batch.messages
        ]
        beating = asyncio.create_task(_keep_beating(said))
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError:  # the case closed: each message records what it became
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        finally:
            beating.cancel()
        return _batch_outcome(tasks)

    @activity.defn(name="send_sms")
    async def send_sms(self, request: OutreachRequest) -> Attempt:
        """One text (cases opened before messages were batched; notices about no case)."""
        return await self._deliver_alone(request, self._send_sms)

    @activity.defn(name="send_email")
    async def send_email(self, request: OutreachRequest) -> Attempt:
        return await self._deliver_alone(request, self._send_email)

    @activity.defn(name="place_call")
    async def place_call(self, request: OutreachRequest) -> Attempt:
        """Call with a short spoken message (left after the beep on a machine), then poll the
        call until Twilio reports its outcome."""
        return await self._deliver_alone(request, self._start_call)

    async def _deliver_alone(
        self,
        request: OutreachRequest,
        send: Callable[[str, Message, OutreachRequest], Awaitable[ProviderReceipt]],
    ) -> Attempt:
        """One message in an activity of its own: its row read here (`send_messages` reads a
        step's rows in one go)."""
        previous = await self._store.get_attempt(request.key)
        return await self._deliver(request, previous, send, _single_try(), _attempt_time())

    def _sender(
        self, channel: Channel
    ) -> Callable[[str, Message, OutreachRequest], Awaitable[ProviderReceipt]]:
        return {
            Channel.voice: self._start_call,
            Channel.sms: self._send_sms,
            Channel.email: self._send_email,
        }[channel]

    async def _deliver(
        self,
        request: OutreachRequest,
        previous: AttemptRow | None,
        send: Callable[[str, Message, OutreachRequest], Awaitable[ProviderReceipt]],
        tried: MessageTry,
        at: datetime,
        people: tuple[ClientProfile | None, Therapist | None] | None = None,
    ) -> Attempt:
        last_try = tried.last
        refused_since = _refused_since(last_try)
        if previous is not None and previous.state == "done":
            log.info("already final, not repeating", extra=_context(request))
            return previous.as_attempt()
        if (
            previous is not None
            and previous.state == "sending"
            and not _said_not_sent(last_try, previous)
        ):
            return await self._finish(
                request,
                AttemptResult.unconfirmed,
                "an earlier try was interrupted mid-send; not resent to avoid a duplicate",
                at,
                provider_id=previous.provider_id,
                dry_run=previous.dry_run,
            )
        if previous is not None and previous.state == "accepted":
            return await self._after_accept(request, previous.provider_id, at, tried)

        client, therapist = people or (
            await self._store.get_client(request.client_id),
            await self._store.get_therapist(request.therapist_id),
        )
        try:
            recipient = await self._recipient(request, client, therapist)
            address = await self._address(request, recipient)
        except UnknownRecipientError as exc:
            return await self._finish(request, exc.result, str(exc), at)
        if not address:
            detail = f"no {request.channel.value} address on file"
            return await self._finish(request, AttemptResult.invalid_recipient, detail, at)
        facts = self._facts(request, recipient, client, therapist, at)
        facts.link = self._link(request, recipient, at)
        message = compose(request.purpose, request.channel, facts)

        claim = _claim_token()
        try:
            claimed = await self._store.claim_attempt(request, at, claim, previous)
        except Exception:
            # The store failed mid-claim (an outage): the claim may have been written all the
            # same, but nothing was sent. Said so, under this claim, the next try sends it
            # instead of recording a message that never left as "unconfirmed".
            tried.say({"not_sent": True, "claim": claim})
            raise
        if not claimed:
            return await self._lost_claim(request, at, tried)
        # This try holds the claim now. Its heartbeat replaces whatever an earlier try said:
        # an earlier try's "not sent" must never let a later one take over THIS try's send.
        tried.say({"claim": claim})
        try:
            receipt = await send(address, message, request)
        except asyncio.CancelledError:  # the case closed while the request was in flight
            detail = "the case closed while the message was handed to the provider; not resent"
            return await self._finish(request, AttemptResult.unconfirmed, detail, at)
        except PermanentDeliveryError as exc:
            if exc.result is AttemptResult.opted_out:
                await self._withdraw_consent(request, at)
            return await self._finish(request, exc.result, exc.detail, at)
        except TransientDeliveryError as exc:
            first_try = previous.started_at if previous and previous.state == "retry" else at
            return await self._refused(request, exc, refused_since or first_try, at, claim, tried)
        except Exception:
            # A bug or a misconfiguration in this system, not a provider's answer: the message
            # did not go out. Not recorded as a failed message: Temporal retries it, visible as
            # a failing activity in the Web UI, and the case resumes once it is fixed.
            tried.say({"not_sent": True, "claim": claim})
            await self._store.mark_retryable(request.key, "an error in this system; not sent")
            raise
        if receipt.dry_run:
            role = _ROLE_NAMES[request.recipient_role]
            detail = f"dry run: would {_DRY_RUN_VERB[request.channel]} the {role}; nothing sent"
            return await self._finish(request, AttemptResult.dry_run, detail, at, dry_run=True)
        try:
            await self._store.mark_accepted(request.key, receipt.provider_id)
        except asyncio.CancelledError:
            return await self._closed_meanwhile(request, receipt.provider_id, at)
        return await self._after_accept(request, receipt.provider_id, at, tried)

    async def _closed_meanwhile(
        self, request: OutreachRequest, provider_id: str | None, at: datetime
    ) -> Attempt:
        """The case closed after the provider took the message: it is recorded all the same
        (the resolution lists every message that went out)."""
        if request.channel is not Channel.voice:
            return await self._finish(request, AttemptResult.sent, "", at, provider_id=provider_id)
        detail = "the case closed while the call was in progress; its outcome was not awaited"
        return await self._finish(
            request, AttemptResult.unconfirmed, detail, at, provider_id=provider_id
        )

    async def _lost_claim(
        self, request: OutreachRequest, at: datetime, tried: MessageTry
    ) -> Attempt:
        """Another try of this message got to the provider first (this one was timed out by
        Temporal but kept running, or the other was): never send it a second time."""
        row = await self._store.get_attempt(request.key)
        if row is not None and row.state == "done":
            return row.as_attempt()
        if row is not None and row.state == "accepted":
            return await self._after_accept(request, row.provider_id, at, tried)
        log.warning(
            "another try of this message is in flight; not sending", extra=_context(request)
        )
        raise ApplicationError(
            "another try of this message is in flight; not sent twice",
            type="MessageInFlight",
            category=ApplicationErrorCategory.BENIGN,
        )

    async def _refused(
        self,
        request: OutreachRequest,
        exc: TransientDeliveryError,
        since: datetime,
        at: datetime,
        claim: str,
        tried: MessageTry,
    ) -> Attempt:
        """The provider did not take the message (429, 5xx, unreachable), or may have taken it
        without saying so (a timeout): record it, or ask Temporal for another try."""
        if exc.may_have_been_sent:
            detail = f"{exc}; not resent to avoid a duplicate"
            return await self._finish(request, AttemptResult.unconfirmed, detail, at)
        if at - since >= request.give_up_after:
            waited = format_duration(at - since)
            detail = f"gave up after {waited} of provider errors: {exc}"
            return await self._finish(request, AttemptResult.failed, detail, at)
        # First the heartbeat (kept by Temporal for the next try), then the store: if the store
        # is down too, the next try still knows that nothing went out and sends again.
        tried.say({"not_sent": True, "claim": claim, "refused_since": since.isoformat()})
        await self._store.mark_retryable(request.key, str(exc))
        retry_after = getattr(exc, "retry_after", None)
        log.warning(
            "provider refused the message; retrying%s",
            f" after {retry_after:g}s (Retry-After)" if retry_after else "",
            extra=_context(request),
        )
        raise ApplicationError(
            str(exc),
            type="ProviderUnavailable",
            category=ApplicationErrorCategory.BENIGN,  # expected: one log line, no traceback
            next_retry_delay=timedelta(seconds=retry_after) if retry_after else None,
        )

    async def _withdraw_consent(self, request: OutreachRequest, at: datetime) -> None:
        """A client who texted STOP has withdrawn consent to texts: later cases honour it."""
        if request.recipient_role is RecipientRole.client:
            await self._store.withdraw_consent(
                request.client_id,
                Channel.sms,
                at,
                source=f"carrier opt-out reported by the provider in case {request.case_id}",
            )

    async def _after_accept(
        self, request: OutreachRequest, provider_id: str | None, at: datetime, tried: MessageTry
    ) -> Attempt:
        if request.channel is not Channel.voice:
            return await self._finish(request, AttemptResult.sent, "", at, provider_id=provider_id)
        if provider_id is None:
            detail = "the provider accepted the call without a call id"
            return await self._finish(request, AttemptResult.unconfirmed, detail, at)
        twilio_every = POLL_TWILIO_EVERY_WITH_CALLBACKS if self._call_status_callbacks else 1
        try:
            for tick in itertools.count():
                row = await self._store.get_attempt(request.key)
                if row is not None and row.state == "done":  # the status callback recorded it
                    return row.as_attempt()
                if tick % twilio_every:
                    tried.say({"call_id": provider_id})
                    await asyncio.sleep(self._poll_interval)
                    continue
                try:
                    outcome = await self._providers.voice.call_outcome(provider_id)
                except PermanentDeliveryError as exc:  # e.g. the call vanished: record, move on
                    return await self._finish(
                        request, exc.result, exc.detail, at, provider_id=provider_id
                    )
                if outcome is not None:
                    return await self._finish(
                        request, outcome.result, outcome.detail, at, provider_id=provider_id
                    )
                tried.say({"call_id": provider_id})
                await asyncio.sleep(self._poll_interval)
        except asyncio.CancelledError:  # the case was closed while the call was ringing
            return await self._closed_meanwhile(request, provider_id, at)
        raise AssertionError("unreachable: the poll loop only returns")

    async def _finish(
        self,
        request: OutreachRequest,
        result: AttemptResult,
        detail: str,
        at: datetime,
        provider_id: str | None = None,
        dry_run: bool = False,
    ) -> Attempt:
        """Record the final result (a no-op returning the stored one if already final)."""
        record = (request, result, detail, provider_id, dry_run, at)
        try:
            attempt = await self._store.record_result(*record)  # a row, if it was never sent
        except asyncio.CancelledError:  # the case closed meanwhile: record it all the same
            attempt = await self._store.record_result(*record)
        log.info("outreach attempt recorded: %s", attempt.result.value, extra=_context(request))
        return attempt

    def _link(self, request: OutreachRequest, recipient: Recipient, at: datetime) -> str:
        """This recipient's page link, minted now (expiring from now), or "" when messages
        carry no links or this recipient never gets one (emergency contact, on-call, calls)."""
        if request.channel is Channel.voice or request.purpose in _NO_LINK:
            return ""
        if self._links is None and self._links_factory is not None:
            self._links = self._links_factory()  # reads the link secret: once, in an activity
            self._links_factory = None
        if self._links is None or not recipient.person_id:
            return ""
        url = self._links.url(request.case_id, request.recipient_role, recipient.person_id, at)
        return url or ""

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

    async def _address(self, request: OutreachRequest, recipient: Recipient) -> str | None:
        """The recipient's address on this channel, unless SendGrid reported it unusable."""
        if request.channel is not Channel.email:
            return recipient.phone
        if recipient.email:
            reason = await self._store.email_suppression(recipient.email)
            if reason is not None:
                raise SuppressedAddressError(f"email address not used: {reason}")
        return recipient.email

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
                    if _withdrawn(client, request.channel):
                        # Recorded failed, not opted_out: opted_out retires the phone number
                        # in the case, and a client who texted STOP may still be called.
                        raise UnknownRecipientError(
                            f"not sent: the client withdrew consent to {request.channel.value} "
                            "since the case opened (e.g. texted STOP)"
                        )
                    raise UnknownRecipientError(f"no {request.channel.value} consent on record")
                return Recipient(client.first_name, client.phone, client.email, client.client_id)
            contact = client.emergency_contact
            if contact is None or not contact.consent_to_contact:
                raise UnknownRecipientError("no recorded consent to contact the emergency contact")
            return Recipient(contact.name, contact.phone, contact.email)
        if role is RecipientRole.on_call:
            if not self._on_call_email:
                raise UnknownRecipientError("the practice has no on-call address configured")
            return Recipient("on-call", None, self._on_call_email)
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
            return Recipient(
                supervisor.name, supervisor.phone, supervisor.email, supervisor.therapist_id
            )
        return Recipient(therapist.name, therapist.phone, therapist.email, therapist.therapist_id)

    def _facts(
        self,
        request: OutreachRequest,
        recipient: Recipient,
        client: ClientProfile | None,
        therapist: Therapist | None,
        at: datetime,
    ) -> MessageFacts:
        return MessageFacts(
            practice=self._practice,
            practice_time_zone=self._practice_time_zone,
            now=at,
            situation=request.situation,
            case_id=request.case_id,
            client_first_name=client.first_name if client else "",
            client_time_zone=client.time_zone if client else "UTC",
            detailed_ok=bool(client and client.detailed_voicemail_ok),
            therapist_name=therapist.name if therapist else "your provider",
            recipient_name=recipient.name,
            scheduled_start=request.scheduled_start,
            waited=format_duration(request.waited) if request.waited else "",
            client_intent=request.client_intent,
            client_id=request.client_id,
        )


# No page behind these: the emergency contact has none, a text notice is about no case.
_NO_LINK = frozenset({Purpose.emergency_contact_check, Purpose.client_texted})


def _withdrawn(client: ClientProfile, channel: Channel) -> bool:
    """Is the client's last consent change on this channel a withdrawal (e.g. STOP)?"""
    changes = [c for c in client.consent_changes if c.channel is channel]
    return bool(changes) and not changes[-1].granted


def _context(request: OutreachRequest) -> dict[str, Any]:
    """What a log line may say about a message: ids only, never an address or a text."""
    return {"case_id": request.case_id, "step": request.step}


def _last_try() -> dict[str, Any]:
    """What the previous try of this activity said in its heartbeat: kept by Temporal even
    when that try could not write to the store. {"not_sent": True} means the message did not
    go out under the claim "claim"; "refused_since" is when the provider first refused it."""
    for details in activity.info().heartbeat_details:
        if isinstance(details, dict):
            return details
    return {}


def _single_try() -> MessageTry:
    """A one-message activity's try: its heartbeat is that message's."""
    return MessageTry(last=_last_try(), say=lambda details: activity.heartbeat(details))


def _said_of(batch_said: dict[str, Any], key: str) -> dict[str, Any]:
    """What the previous try of a batch said about one of its messages."""
    said = batch_said.get(key)
    return said if isinstance(said, dict) else {}


# A batch with a call heartbeats at least this often (its heartbeat timeout is 30 s): a text
# waiting its turn for the store says nothing of its own for a while, yet the worker is alive.
BATCH_HEARTBEAT_EVERY = 10.0


async def _keep_beating(said: dict[str, dict[str, Any]]) -> None:
    while True:
        await asyncio.sleep(BATCH_HEARTBEAT_EVERY)
        activity.heartbeat(dict(said))


def _batch_outcome(tasks: list[asyncio.Task[Attempt]]) -> list[Attempt]:
    """The batch's answer once every message has finished its try: the attempts in order; or,
    for Temporal's retry, the first error of this system (a bug stays visible), else one
    failure for the refused messages with the longest Retry-After any of them named."""
    if any(task.cancelled() for task in tasks):
        raise asyncio.CancelledError()  # the unfinished ones are finished at close-out
    errors = [error for task in tasks if (error := task.exception()) is not None]
    ours = [e for e in errors if not _expected(e)]
    if ours:
        raise ours[0]
    if errors:
        delays = [e.next_retry_delay for e in errors if isinstance(e, ApplicationError)]
        longest = max((d for d in delays if d is not None), default=None)
        raise ApplicationError(
            f"{len(errors)} of {len(tasks)} messages not sent yet: "
            + "; ".join(str(e) for e in errors),
            type="ProviderUnavailable",
            category=ApplicationErrorCategory.BENIGN,
            next_retry_delay=longest,
        )
    return [task.result() for task in tasks]


def _expected(error: BaseException) -> bool:
    """A provider's refusal or another try in flight: retried by Temporal, one log line."""
    return (
        isinstance(error, ApplicationError)
        and error.category is ApplicationErrorCategory.BENIGN
        and error.type in ("ProviderUnavailable", "MessageInFlight")
    )


def _said_not_sent(last_try: dict[str, Any], row: AttemptRow) -> bool:
    """Did the try holding this `sending` row say (in its heartbeat) that nothing went out?
    Only the claim's own holder can say so: a heartbeat from an earlier try is about a send
    that is over, not about the one the row is in the middle of."""
    return bool(last_try.get("not_sent")) and last_try.get("claim") == row.claim


def _claim_token() -> str:
    """This try of this activity, unique across tries, runs and resets."""
    info = activity.info()
    return f"{info.workflow_run_id}/{info.activity_id}/{info.attempt}"


def _refused_since(last_try: dict[str, Any]) -> datetime | None:
    since = last_try.get("refused_since")
    return datetime.fromisoformat(since) if isinstance(since, str) else None


def _attempt_time() -> datetime:
    """When this try started, by the Temporal server's clock (so time-skipping tests see the
    skipped time, and production sees real time)."""
    return activity.info().current_attempt_scheduled_time
