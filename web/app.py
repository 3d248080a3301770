"""The ASGI app `starter.py serve` runs (uvicorn)."""

from __future__ import annotations

from fastapi import FastAPI

from settings import Settings
from temporal_env.codec import EncryptionCodec, parse_keys
from web import integrations, sendgrid_events, twilio_hooks
from web.codec_server import add_codec_server
from web.context import WebContext


class ServeError(ValueError):
    """The web service is misconfigured (one line)."""


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="Missed Session Outreach", docs_url="/api/docs")
    keys = settings.payload_keys
    if keys is not None:
        token = settings.codec_server_token
        if token is None or len(token.get_secret_value()) < 16:
            raise ServeError(
                "CODEC_SERVER_TOKEN (at least 16 characters) is required to serve decoded "
                "payloads when PAYLOAD_KEYS is set"
            )
        codec = EncryptionCodec(parse_keys(keys.get_secret_value()))
        add_codec_server(app, codec, token.get_secret_value(), settings.temporal_ui_url)

    context = WebContext(settings)
    app.include_router(twilio_hooks.router(context))
    app.include_router(sendgrid_events.router(context))
    app.include_router(integrations.router(context))

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"ok": True, "codec_server": keys is not None}

    return app
