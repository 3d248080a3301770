"""Temporal's remote codec protocol (`POST /codec/encode`, `POST /codec/decode`), so staff who
hold the token can read decoded payloads in the Web UI (`--ui-codec-endpoint`, or the UI's
"Codec Server" setting), while the Temporal server itself only ever stores sealed ones.

Bodies are `{"payloads": [...]}` in protobuf JSON, as the Web UI and the `temporal` CLI send
them. Every request needs `Authorization: Bearer <CODEC_SERVER_TOKEN>`; the Web UI's origin is
allowed by CORS (its preflight needs no token).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from temporal_env.codec import EncryptionCodec, PayloadKeyError


def codec_router(codec: EncryptionCodec, token: str) -> APIRouter:
    def authorised(authorization: str = Header(default="")) -> None:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(status_code=403, detail="a valid codec server token is required")

    router = APIRouter(prefix="/codec", dependencies=[Depends(authorised)])

    async def _payloads(request: Request) -> Payloads:
        try:
            return json_format.Parse(await request.body(), Payloads())
        except (json_format.ParseError, UnicodeDecodeError):  # not UTF-8: not JSON either
            raise HTTPException(status_code=400, detail='expected {"payloads": [...]}') from None

    def _answer(payloads: Payloads) -> Response:
        return Response(json_format.MessageToJson(payloads), media_type="application/json")

    @router.post("/encode")
    async def encode(request: Request) -> Response:
        payloads = await _payloads(request)
        return _answer(Payloads(payloads=await codec.encode(payloads.payloads)))

    @router.post("/decode")
    async def decode(request: Request) -> Response:
        payloads = await _payloads(request)
        try:
            opened = await codec.decode(payloads.payloads)
        except PayloadKeyError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return _answer(Payloads(payloads=opened))

    return router


def add_codec_server(app: FastAPI, codec: EncryptionCodec, token: str, ui_origin: str) -> None:
    app.include_router(codec_router(codec, token))
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[ui_origin.rstrip("/")],
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        allow_credentials=True,
    )
