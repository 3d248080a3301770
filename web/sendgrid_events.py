"""SendGrid's signed event webhook (`POST /sendgrid/events`): bounces, drops and spam reports
fail the email's attempt and retire the address (`service.email_events`).

Set it up in SendGrid under Settings > Mail Settings > Event Webhook: the URL
PUBLIC_BASE_URL/sendgrid/events, the events Bounced, Dropped and Spam Reports (others are
accepted and ignored), and "Signed Event Webhook" on; its verification key goes into
SENDGRID_WEBHOOK_PUBLIC_KEY. Without that key every request is refused (403).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, Response

from service.email_events import EmailEventService
from web.context import WebContext
from web.signatures import forbidden, sendgrid_body, sendgrid_verifier

log = logging.getLogger(__name__)

EVENTS_PATH = "/sendgrid/events"


def router(context: WebContext) -> APIRouter:
    routes = APIRouter(tags=["SendGrid webhooks"])
    settings = context.settings
    verifier = sendgrid_verifier(settings)

    @routes.post(EVENTS_PATH, summary="SendGrid event webhook (signed, ECDSA)")
    async def email_events(request: Request) -> Response:
        """A batch of email events, signed by SendGrid within the time window, once."""
        now = datetime.now(UTC)
        body, replay_key = await sendgrid_body(request, settings, verifier, now)
        try:
            events = json.loads(body)
        except ValueError:
            raise HTTPException(status_code=400, detail="expected a JSON array") from None
        if not isinstance(events, list):
            raise HTTPException(status_code=400, detail="expected a JSON array")
        cases = await context.cases()
        if await cases.store.has_receipt(replay_key):
            log.warning("SendGrid events refused: already handled (a replay)")
            raise forbidden()
        at = await context.now()
        summary = await EmailEventService(cases).apply(events, at)
        await cases.store.add_receipt(replay_key, at)
        log.info(
            "SendGrid events: %d attempts failed, %d addresses retired, %d ignored",
            len(summary.failed_attempts),
            summary.suppressed,
            summary.ignored,
        )
        return Response(status_code=204)

    return routes
