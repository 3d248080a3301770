"""Twilio's webhooks: texts clients send to the practice's number (`POST /twilio/sms`), and the
outcome of a call as soon as it ends (`POST /twilio/call-status`).

Both are form posts signed by Twilio (`web.signatures.twilio_form`: 403 otherwise, nothing
changed). Point the number's "A message comes in" webhook at PUBLIC_BASE_URL/twilio/sms (HTTP
POST); calls carry the status callback themselves when PUBLIC_BASE_URL is public.

Replays: a text is handled once per MessageSid, a call status once per call and status. A
repeat of one handled to the end gets 403 and changes nothing. Twilio itself re-sends a webhook
only when it got no answer (a timeout, a connection error; with the `#rc=` URL options): if the
first delivery was handled, the repeat is refused and nothing is lost; if it failed half-way
(we answered 503), it was not remembered, and the repeat is handled.
"""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, HTTPException, Request, Response
from twilio.twiml.messaging_response import MessagingResponse

from providers.twilio_provider import CALL_STATUS_PATH, call_outcome_from
from service.cases import CaseError
from service.replies import AlreadyHandled, ReplyService
from store.errors import StoreError
from web.context import WebContext
from web.signatures import forbidden, twilio_form

log = logging.getLogger(__name__)

SMS_PATH = "/twilio/sms"
_SID = re.compile(r"^[A-Za-z0-9_-]{2,64}\Z")  # Twilio's SM... / CA... ids
_STATUS = re.compile(r"^[a-z-]{1,20}\Z")


def _twiml(text: str | None = None) -> Response:
    reply = MessagingResponse()
    if text:
        reply.message(text)
    return Response(str(reply), media_type="application/xml")


def router(context: WebContext) -> APIRouter:
    routes = APIRouter(tags=["Twilio webhooks"])
    settings = context.settings

    @routes.post(SMS_PATH, summary="Twilio inbound SMS (signed form post)")
    async def inbound_sms(request: Request) -> Response:
        """A text to the practice's number: a reply answers the client's case; STOP-like
        keywords withdraw consent to texts, START restores it, HELP gets the contact line.
        Answered with TwiML."""
        form = await twilio_form(request, settings)
        sid, sender = str(form.get("MessageSid") or ""), str(form.get("From") or "")
        if not _SID.match(sid) or not sender or len(sender) > 32:
            raise HTTPException(status_code=400, detail="MessageSid and From are required")
        replies = ReplyService(await context.cases(), settings)
        try:
            outcome = await replies.receive(
                sid, sender, str(form.get("Body") or ""), await context.now()
            )
        except AlreadyHandled:
            log.warning("Twilio inbound text refused: already handled (a replay)")
            raise forbidden() from None
        except (CaseError, StoreError) as exc:
            log.warning("inbound text not handled yet: %s", exc)
            raise HTTPException(status_code=503, detail="try again later") from None
        return _twiml(outcome.answer_text)

    @routes.post(CALL_STATUS_PATH, summary="Twilio call status callback (signed form post)")
    async def call_status(request: Request) -> Response:
        """A call's final status: its attempt is finished in the store at once, where the
        call's activity (polling while it waits) finds it."""
        form = await twilio_form(request, settings)
        sid, status = str(form.get("CallSid") or ""), str(form.get("CallStatus") or "")
        if not _SID.match(sid) or not _STATUS.match(status):
            raise HTTPException(status_code=400, detail="CallSid and CallStatus are required")
        store = (await context.cases()).store
        key = f"twilio-call/{sid}/{status}"
        if await store.has_receipt(key):
            log.warning("Twilio call status refused: already handled (a replay)")
            raise forbidden()
        answered_by = form.get("AnsweredBy")
        outcome = call_outcome_from(status, str(answered_by) if answered_by else None)
        now = await context.now()
        if outcome is not None:
            await store.finish_call(sid, outcome.result, outcome.detail, now)
        await store.add_receipt(key, now)
        return Response(status_code=204)

    return routes
