"""Email through the official `sendgrid` client. It is synchronous, so it runs in a thread and
never blocks the worker's event loop. SendGrid is not under a HIPAA BAA: no clinical content."""

from __future__ import annotations

import asyncio
import logging
from http.client import HTTPException
from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail

from models.case import AttemptResult
from providers.base import PermanentDeliveryError, ProviderReceipt, TransientDeliveryError

REQUEST_TIMEOUT_SECONDS = 20.0

# python_http_client logs whole requests at DEBUG: the recipient, the body and the API key.
logging.getLogger("python_http_client").setLevel(logging.WARNING)


# Errors are raised `from None`: Temporal records an activity failure's cause chain in the
# workflow history, and library messages may quote the recipient.


class SendGridEmail:
    def __init__(self, api_key: str, from_email: str, host: str) -> None:
        self._client = SendGridAPIClient(api_key, host=host)
        self._client.client.timeout = REQUEST_TIMEOUT_SECONDS
        self._from = from_email

    async def send_email(self, to: str, subject: str, body: str, key: str) -> ProviderReceipt:
        mail = Mail(from_email=self._from, to_emails=to, subject=subject, plain_text_content=body)
        mail.custom_arg = CustomArg("outreach_key", key)  # lets event webhooks find the attempt
        try:
            response = await asyncio.to_thread(self._client.send, mail)
        except HTTPError as exc:
            status = int(exc.status_code)
            if status == 429 or status >= 500:
                raise TransientDeliveryError(f"SendGrid HTTP {status}") from None
            raise PermanentDeliveryError(AttemptResult.failed, f"SendGrid HTTP {status}") from None
        except (TimeoutError, URLError, OSError, HTTPException) as exc:
            ambiguous = isinstance(exc, TimeoutError | HTTPException) or isinstance(
                getattr(exc, "reason", None), TimeoutError
            )
            raise TransientDeliveryError(
                f"SendGrid unreachable: {type(exc).__name__}", may_have_been_sent=ambiguous
            ) from None
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        return ProviderReceipt(provider_id=message_id, detail=f"HTTP {response.status_code}")
