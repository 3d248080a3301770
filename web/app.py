"""The ASGI app `starter.py serve` (and the demo) runs on uvicorn: the pages reached from the
links in messages (close-out, client), the webhooks of Twilio and SendGrid, the practice
systems' API, and the codec server for the Web UI."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from models.links import CLIENT_PATH, STAFF_PATH
from settings import Settings
from store.errors import StoreError
from temporal_env.codec import EncryptionCodec, parse_keys
from web import integrations, sendgrid_events, twilio_hooks
from web.client_page import client_router
from web.close_out import close_out_router
from web.codec_server import add_codec_server
from web.context import WebContext
from web.errors import add_error_handlers, store_unavailable
from web.pages import STATIC, PageDeps, PageProblem, problem_page, with_security_headers


class ServeError(ValueError):
    """The web service is misconfigured (one line)."""


def create_app(settings: Settings, pages: PageDeps | None = None) -> FastAPI:
    """The app; with `pages` (the case service, the links, a clock) it serves the pages too.
    The webhooks and the API share the pages' case service when there is one."""
    app = FastAPI(title="Missed Session Outreach", docs_url="/api/docs")
    add_error_handlers(app)
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

    context = WebContext(settings, pages.service if pages is not None else None)
    app.include_router(twilio_hooks.router(context))
    app.include_router(sendgrid_events.router(context))
    app.include_router(integrations.router(context))

    if pages is not None:
        app.include_router(close_out_router(pages))
        app.include_router(client_router(pages))
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
        app.middleware("http")(with_security_headers)

        @app.exception_handler(PageProblem)
        async def problem(request: Request, exc: PageProblem) -> Response:
            return problem_page(request, exc)

        @app.exception_handler(StoreError)
        async def store_failed(request: Request, exc: StoreError) -> Response:
            if not request.url.path.startswith((STAFF_PATH, CLIENT_PATH)):
                return await store_unavailable(request, exc)
            problem = PageProblem(
                503,
                "The case cannot be read just now",
                "The case system is not reachable. Please try again in a few minutes.",
            )
            return problem_page(request, problem)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"ok": True, "codec_server": keys is not None, "pages": pages is not None}

    return app
