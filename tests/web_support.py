"""The web service's webhooks and API in tests: the real routers over a harness's case service,
through httpx's ASGI transport, with requests signed by the official libraries."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from service.cases import CaseService
from settings import Settings
from tests.harness import Harness
from web import integrations, sendgrid_events, twilio_hooks
from web.context import WebContext
from web.errors import add_error_handlers

PUBLIC = "https://hooks.example.org"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
ACCOUNT = "AC" + "0" * 32


class SendGridSigner:
    """Signs event batches as SendGrid's signed event webhook does (ECDSA P-256, SHA-256 over
    timestamp + body), with a key made for the test."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }


def hook_settings(base: Settings, signer: SendGridSigner | None = None, **changes: Any) -> Settings:
    fields: dict[str, Any] = {
        "twilio_auth_token": SecretStr(TWILIO_TOKEN),
        "twilio_account_sid": ACCOUNT,
        "public_base_url": PUBLIC,
        "sendgrid_webhook_public_key": signer.public_key if signer else None,
    }
    return base.model_copy(update={**fields, **changes})


def hooks_app(context: WebContext) -> FastAPI:
    """The routes `web.app.create_app` registers, over the given context."""
    app = FastAPI()
    add_error_handlers(app)
    app.include_router(twilio_hooks.router(context))
    app.include_router(sendgrid_events.router(context))
    app.include_router(integrations.router(context))
    return app


@asynccontextmanager
async def web_client(
    h: Harness, signer: SendGridSigner | None = None, temporal: bool = True, **changes: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, CaseService]]:
    """A client of the webhooks and API over the harness's store and Temporal (`temporal`
    False: Temporal is connected as in production, per TEMPORAL_ADDRESS)."""
    settings = hook_settings(h.settings, signer, **changes)
    cases = CaseService(h.store, settings, h.client if temporal else None)
    context = WebContext(settings, cases, clock=h.env.get_current_time)
    transport = httpx.ASGITransport(app=hooks_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://internal:8000") as client:
        yield client, cases


def twilio_signature(path: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> str:
    return RequestValidator(token).compute_signature(PUBLIC + path, params)


async def post_twilio(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, str],
    signature: str | None = "sign",
) -> httpx.Response:
    """POST a form as Twilio does, signed for these exact params unless told otherwise."""
    headers = {}
    if signature == "sign":
        signature = twilio_signature(path, params)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return await client.post(path, data=params, headers=headers)


def sms_params(sid: str, sender: str, body: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT,
        "From": sender,
        "To": "+15555550100",
        "Body": body,
        "NumMedia": "0",
    }
