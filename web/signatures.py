"""Every provider request is checked before it changes anything.

- Twilio signs each webhook with the account's auth token: `X-Twilio-Signature` is an HMAC of
  the URL Twilio requested and the form's parameters. It is checked with the official
  `twilio.request_validator.RequestValidator`, against PUBLIC_BASE_URL + the path (behind a
  proxy the service cannot know its public URL from the request).
- SendGrid's signed event webhook signs timestamp + body with ECDSA (P-256, SHA-256): checked
  with `sendgrid.helpers.eventwebhook.EventWebhook` and the verification key from Mail
  Settings; the signed timestamp must be within SENDGRID_WEBHOOK_MAX_AGE_SECONDS of now.

Replays are refused by remembering what was handled (see the routes): a Twilio text by its
MessageSid, a call-status callback by call and status, a SendGrid batch by the digest of its
signed timestamp and body (not by its signature: an ECDSA signature can be re-encoded into a
different valid one, so it is no identity). Only a request handled to the end is remembered: one
that failed half-way (the store down) answers 5xx, and the provider's retry of it is handled.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from fastapi import HTTPException, Request
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator

from settings import Settings

log = logging.getLogger(__name__)

FUTURE_SKEW = timedelta(minutes=5)  # a sender's clock slightly ahead of ours is not an attack
MAX_BODY_BYTES = 1_000_000  # a SendGrid batch is far smaller; a Twilio form much smaller still


def forbidden() -> HTTPException:
    """The one answer to a request that cannot be verified: nothing says which check failed."""
    return HTTPException(status_code=403, detail="request signature not valid")


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(status_code=413, detail="request too large")
    return body


async def twilio_form(request: Request, settings: Settings) -> FormData:
    """The form of a request Twilio signed, or 403. Parsed from the raw body, every value of a
    repeated parameter kept (the signature covers them all)."""
    body = await _body(request)
    token = settings.twilio_auth_token
    signature = request.headers.get("X-Twilio-Signature", "")
    if token is None or not signature:
        log.warning("Twilio webhook refused: %s", "no auth token" if token is None else "unsigned")
        raise forbidden()
    try:
        form = FormData(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        raise forbidden() from None
    url = settings.public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not RequestValidator(token.get_secret_value()).validate(url, form, signature):
        log.warning("Twilio webhook refused: signature not valid")
        raise forbidden()
    account = settings.twilio_account_sid
    if account and form.get("AccountSid") != account:
        log.warning("Twilio webhook refused: another account's request")
        raise forbidden()
    return form


def sendgrid_verifier(settings: Settings) -> EventWebhook | None:
    """The verifier for SENDGRID_WEBHOOK_PUBLIC_KEY, or None when it is not set (every event
    request is then refused). A key that cannot be read is a configuration error at start."""
    key = settings.sendgrid_webhook_public_key
    if not key:
        return None
    try:
        return EventWebhook(key.strip())
    except (ValueError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise ValueError(
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key (paste the verification key "
            "from SendGrid's Mail Settings, base64)"
        ) from exc


async def sendgrid_body(
    request: Request, settings: Settings, verifier: EventWebhook | None, now: datetime
) -> tuple[bytes, str]:
    """The body of a request SendGrid signed within the time window, with its replay key; or
    403."""
    body = await _body(request)
    signature = request.headers.get(EventWebhookHeader.SIGNATURE, "")
    stamp = request.headers.get(EventWebhookHeader.TIMESTAMP, "")
    if verifier is None or not signature or not stamp.isdigit() or len(stamp) > 12:
        log.warning("SendGrid webhook refused: %s", "no key" if verifier is None else "unsigned")
        raise forbidden()
    try:
        valid = verifier.verify_signature(body.decode(), signature, stamp)
    except (binascii.Error, ValueError, InvalidSignature, UnicodeDecodeError):
        valid = False
    if not valid:
        log.warning("SendGrid webhook refused: signature not valid")
        raise forbidden()
    signed_at = datetime.fromtimestamp(int(stamp), now.tzinfo)
    max_age = timedelta(seconds=settings.sendgrid_webhook_max_age_seconds)
    if signed_at < now - max_age or signed_at > now + FUTURE_SKEW:
        log.warning("SendGrid webhook refused: signed outside the time window")
        raise forbidden()
    digest = hashlib.sha256(stamp.encode() + b"." + body).hexdigest()
    return body, f"sendgrid/{digest}"
