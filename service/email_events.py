"""SendGrid's event webhook: an email that bounced, was dropped, or that its recipient reported
as spam failed, and its address is not used again.

The email's attempt is found by the message id SendGrid returned when it took the mail
(`X-Message-Id`, kept as the attempt's `provider_id`): an event's `sg_message_id` begins with
it. The attempt, recorded `sent` then, becomes `failed` with the reason; the address is kept
in `email_suppressions`, and outreach records later messages to it `invalid_recipient`, so the
case skips the channel, saying why. An open case also gets a note in its timeline.

Other events (delivered, open, click, deferred, ...) change nothing. Every event may arrive
twice (SendGrid retries): each change is idempotent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from models.case import AttemptResult
from service.cases import CaseError, CaseService

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"^[^\x00-\x20@]{1,200}@[^\x00-\x20@]{1,200}\Z")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}\Z")  # X-Message-Id: URL-safe base64
FAILING_EVENTS = {
    "bounce": "bounced",
    "dropped": "was dropped by SendGrid",
    "spamreport": "was reported as spam by its recipient",
}


@dataclass
class EmailEventSummary:
    failed_attempts: list[str] = field(default_factory=list)  # attempt keys (no PHI)
    suppressed: int = 0
    ignored: int = 0


def _reason(event: Mapping[str, Any]) -> str:
    """Why the address is not used, from SendGrid's fields that quote no address or text (its
    `reason` quotes the receiving server, often the address itself: it is not kept)."""
    kind = str(event.get("event"))
    reason = f"SendGrid {kind}"
    bounce_type = event.get("type")
    if isinstance(bounce_type, str) and bounce_type.isalpha() and bounce_type != kind:
        reason += f" ({bounce_type[:20]})"
    status = event.get("status")
    if isinstance(status, str) and status.replace(".", "").isdigit():
        reason += f", status {status[:10]}"
    return reason


class EmailEventService:
    def __init__(self, cases: CaseService) -> None:
        self._cases = cases
        self._store = cases.store

    async def apply(self, events: list[Any], now: datetime) -> EmailEventSummary:
        summary = EmailEventSummary()
        for event in events:
            kind = event.get("event") if isinstance(event, Mapping) else None
            if not isinstance(kind, str) or kind not in FAILING_EVENTS:  # [] is unhashable
                summary.ignored += 1
                continue
            assert isinstance(event, Mapping)
            reason = _reason(event)
            email = event.get("email")
            if isinstance(email, str) and len(email) <= 254 and _ADDRESS.match(email):
                await self._store.suppress_email(email, reason, now)
                summary.suppressed += 1
            message_id = str(event.get("sg_message_id") or "").split(".", 1)[0]
            if not _MESSAGE_ID.match(message_id):
                continue
            detail = f"the email {FAILING_EVENTS[kind]} ({reason}); the address is not used again"
            key = await self._store.fail_email(message_id, AttemptResult.failed, detail, now)
            if key is not None:
                summary.failed_attempts.append(key)
                await self._note(key, detail)
        return summary

    async def _note(self, key: str, detail: str) -> None:
        """Tell an open case in its timeline (its attempt list shows what it saw at send time;
        the store and the resolution have the failure)."""
        attempt = await self._store.get_attempt(key)
        if attempt is None:
            return
        case = await self._store.get_case(attempt.case_id)
        if case is None or case.closed_at is not None:
            return
        text = f"Email {attempt.step}: {detail}."
        try:
            await self._cases.answer(case.case_id, "add_note", {"author": "system", "text": text})
        except CaseError:
            log.warning("could not note a failed email", extra={"case_id": case.case_id})
