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
from providers.base import (
    PermanentDeliveryError,
    ProviderReceipt,
    TransientDeliveryError,
    parse_retry_after,
)

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
                headers = exc.headers or {}
                raise TransientDeliveryError(
                    f"SendGrid HTTP {status}",
                    retry_after=parse_retry_after(headers.get("Retry-After")),
                ) from None
            raise PermanentDeliveryError(AttemptResult.failed, f"SendGrid HTTP {status}") from None
        except (TimeoutError, URLError, OSError, HTTPException) as exc:
            raise _connection_error(exc) from None
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        return ProviderReceipt(provider_id=message_id, detail=f"HTTP {response.status_code}")


def _connection_error(exc: BaseException) -> TransientDeliveryError:
    """Refused or unresolvable: SendGrid never saw the request, so sending again is safe. A
    timeout or a connection reset after the request left: SendGrid may have taken it."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, TimeoutError):
        return TransientDeliveryError(
            f"no answer from SendGrid within {REQUEST_TIMEOUT_SECONDS:g}s: "
            "it may have taken the message",
            may_have_been_sent=True,
        )
    if isinstance(reason, ConnectionRefusedError) or isinstance(exc, URLError):
        return TransientDeliveryError(f"SendGrid unreachable: {type(reason).__name__}")
    return TransientDeliveryError(
        f"connection to SendGrid lost after the request was sent ({type(reason).__name__}): "
        "it may have taken the message",
        may_have_been_sent=True,
    )
