"""SMS and voice calls through the official `twilio` library (async), with errors classified.

`TWILIO_API_BASE_URL` points the client at a Twilio-compatible local endpoint in tests and
drills; in production it stays https://api.twilio.com.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from models.case import AttemptResult
from providers.base import (
    CallOutcome,
    PermanentDeliveryError,
    ProviderReceipt,
    TransientDeliveryError,
    parse_retry_after,
)

# The library logs every request (URLs with the account, headers) at INFO: keep it quiet.
logging.getLogger("twilio").setLevel(logging.WARNING)

TWILIO_HOST = "https://api.twilio.com"
REQUEST_TIMEOUT_SECONDS = 20.0

INVALID_RECIPIENT_CODES = {21211, 21214, 21217, 21401, 21407, 21421, 21614}
OPTED_OUT_CODES = {21610}
UNDELIVERABLE_CODES = {30003, 30004, 30005, 30006, 30007}

_VOICEMAIL = {"machine_end_beep", "machine_end_silence", "machine_end_other"}
_IN_PROGRESS = {"queued", "initiated", "ringing", "in-progress"}


class _BaseUrlHttpClient(AsyncTwilioHttpClient):
    """Sends every request to `base_url` instead of api.twilio.com."""

    def __init__(self, base_url: str) -> None:
        super().__init__(timeout=None)
        self._base_url = base_url.rstrip("/")

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(TWILIO_HOST):
            url = self._base_url + url[len(TWILIO_HOST) :]
        kwargs["timeout"] = None  # bounded by asyncio.wait_for in `_call` instead
        response = await super().request(method, url, *args, **kwargs)
        if response.status_code in (429, 503):  # the library drops headers: keep Retry-After
            headers = response.headers or {}
            raise TransientDeliveryError(
                f"Twilio error (HTTP {response.status_code})",
                retry_after=parse_retry_after(headers.get("Retry-After")),
            )
        return response


class _TwilioBase:
    def __init__(self, account_sid: str, auth_token: str, from_number: str, base_url: str) -> None:
        self._sid, self._token, self._from, self._base_url = (
            account_sid,
            auth_token,
            from_number,
            base_url,
        )
        self._client: Client | None = None

    def client(self) -> Client:
        """Created lazily: the async http client needs a running event loop."""
        if self._client is None:
            client = Client(self._sid, self._token, http_client=_BaseUrlHttpClient(self._base_url))
            client.edge = None  # TWILIO_EDGE / TWILIO_REGION would rewrite the host
            client.region = None
            self._client = client
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP session (at worker shutdown)."""
        if self._client is not None and self._client.http_client is not None:
            await self._client.http_client.close()  # type: ignore[attr-defined]
            self._client = None

    async def _call(self, operation: Any) -> Any:
        """Run one API call; errors are raised `from None` because Temporal records an activity
        failure's cause chain in history, and Twilio's messages may quote the phone number."""
        try:
            return await asyncio.wait_for(operation, REQUEST_TIMEOUT_SECONDS)
        except TwilioRestException as exc:
            raise classify(exc) from None
        except aiohttp.ClientConnectorError as exc:  # never reached Twilio: safe to resend
            raise TransientDeliveryError(f"Twilio unreachable: {type(exc).__name__}") from None
        except TimeoutError:
            raise TransientDeliveryError(
                f"no answer from Twilio within {REQUEST_TIMEOUT_SECONDS:g}s: "
                "it may have taken the message",
                may_have_been_sent=True,
            ) from None
        except (aiohttp.ClientError, ConnectionError) as exc:  # reset after the request left
            raise TransientDeliveryError(
                f"connection to Twilio lost after the request was sent ({type(exc).__name__}): "
                "it may have taken the message",
                may_have_been_sent=True,
            ) from None


def classify(exc: TwilioRestException) -> Exception:
    code = int(exc.code) if exc.code else None
    status = int(exc.status)
    label = f"Twilio error {code or status}"
    if code in INVALID_RECIPIENT_CODES:
        return PermanentDeliveryError(AttemptResult.invalid_recipient, label, code)
    if code in OPTED_OUT_CODES:
        return PermanentDeliveryError(
            AttemptResult.opted_out, label + ": recipient opted out", code
        )
    if code in UNDELIVERABLE_CODES:
        return PermanentDeliveryError(AttemptResult.failed, label + ": undeliverable", code)
    if status == 429 or status >= 500:
        return TransientDeliveryError(f"{label} (HTTP {status})")
    return PermanentDeliveryError(AttemptResult.failed, f"{label} (HTTP {status})", code)


class TwilioSms(_TwilioBase):
    async def send_sms(self, to: str, body: str) -> ProviderReceipt:
        message = await self._call(
            self.client().messages.create_async(to=to, from_=self._from, body=body)
        )
        return ProviderReceipt(provider_id=message.sid, detail=str(message.status or ""))


CALL_STATUS_PATH = "/twilio/call-status"


class TwilioVoice(_TwilioBase):
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str,
        status_callback: str | None = None,
    ) -> None:
        """`status_callback`: the public URL of the web service's call-status webhook, or None
        (no public URL configured: the activity polls the call until it ends)."""
        super().__init__(account_sid, auth_token, from_number, base_url)
        self._status_callback = status_callback

    async def start_call(self, to: str, spoken_message: str) -> ProviderReceipt:
        twiml = VoiceResponse()
        twiml.say(spoken_message)
        options: dict[str, Any] = {}
        if self._status_callback:  # Twilio posts the final status (default event: completed)
            options = {"status_callback": self._status_callback, "status_callback_method": "POST"}
        call = await self._call(
            self.client().calls.create_async(
                to=to,
                from_=self._from,
                twiml=str(twiml),
                machine_detection="DetectMessageEnd",  # speak after the beep on a machine
                **options,
            )
        )
        return ProviderReceipt(provider_id=call.sid, detail=str(call.status or ""))

    async def call_outcome(self, call_id: str) -> CallOutcome | None:
        call = await self._call(self.client().calls(call_id).fetch_async())
        return call_outcome_from(str(call.status or ""), call.answered_by)


def call_outcome_from(status: str, answered_by: str | None) -> CallOutcome | None:
    """Map Twilio's call status and answering-machine detection to an attempt result."""
    if status in _IN_PROGRESS:
        return None
    if status == "completed":
        if answered_by in _VOICEMAIL:
            return CallOutcome(result=AttemptResult.voicemail, detail=f"answered by {answered_by}")
        if answered_by in ("machine_start", "fax"):
            return CallOutcome(
                result=AttemptResult.no_answer, detail=f"{answered_by}: no message left"
            )
        if answered_by == "human":
            return CallOutcome(result=AttemptResult.answered, detail="answered by a person")
        # AMD could not tell (unknown / not reported): the message was played to whoever answered.
        return CallOutcome(result=AttemptResult.answered, detail="answered (person not confirmed)")
    if status == "busy":
        return CallOutcome(result=AttemptResult.busy)
    if status in ("no-answer", "canceled"):
        return CallOutcome(result=AttemptResult.no_answer, detail=status)
    return CallOutcome(result=AttemptResult.failed, detail=status or "unknown status")
