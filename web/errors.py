"""Errors every route shares, answered without echoing what the caller sent.

FastAPI's own 422 answer quotes the request: each error carries the `input` it was about (a
whole JSON body, for an error at its top), and pydantic's messages quote a discriminator's
value ("Input tag 'Alex Smith' found using 'type' ..."). A body may hold PHI, and an answer
goes back through proxies and into their logs. So a 422 here names the fields and says what
is wrong with them, nothing else; a case store that fails is 503 (retry), never a 500 with a
traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from store.errors import StoreError

log = logging.getLogger(__name__)

_MAX_KEY = 64  # an unknown key is named, but a key of a megabyte is not repeated


def validation_detail(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's error list as `loc`, `msg` and `type` only, the messages in our words where
    pydantic's would quote the input."""
    detail = []
    for error in errors:
        loc = [_loc_part(part) for part in error.get("loc", ())]
        kind = str(error.get("type", "value_error"))
        ctx = error.get("ctx") or {}
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            field = str(ctx.get("discriminator", "type")).strip("'")
            expected = ctx.get("expected_tags")
            loc.append(field)
            msg = f"must be one of {expected}" if expected else "a required field"
            if kind == "union_tag_not_found":
                msg = "Field required" + (f" (one of {expected})" if expected else "")
        else:
            msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        detail.append({"loc": loc, "msg": msg, "type": kind})
    return detail


def _loc_part(part: Any) -> str | int:
    if isinstance(part, int):
        return part
    text = str(part)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text if len(text) <= _MAX_KEY else text[:_MAX_KEY] + "..."


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": validation_detail(exc.errors())})

    app.add_exception_handler(StoreError, store_unavailable)


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("request not handled: %s", exc)  # a StoreError never quotes a row
    return JSONResponse(status_code=503, content={"detail": "case store unavailable"})
