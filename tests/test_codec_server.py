"""The codec server the Web UI decodes payloads through: the remote codec protocol, its token,
CORS for the Web UI's origin only."""

from __future__ import annotations

import base64
import os

import httpx
import pytest
from pydantic import SecretStr

from settings import Settings
from web.app import ServeError, create_app

UI = "http://localhost:8233"
TOKEN = "codec-token-0123456789"
PLAIN = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}, "data": ""}
PLAIN["data"] = base64.b64encode(b'{"note": "Spoke with Alex"}').decode()


def _settings(**changes: object) -> Settings:
    keys = f"k1={base64.b64encode(os.urandom(32)).decode()}"
    fields: dict[str, object] = {
        "payload_keys": SecretStr(keys),
        "codec_server_token": SecretStr(TOKEN),
        "temporal_ui_url": UI,
    }
    return Settings(**{**fields, **changes})  # type: ignore[arg-type]


def _client(settings: Settings) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(settings))
    return httpx.AsyncClient(transport=transport, base_url="http://codec.test")


async def test_encode_then_decode_with_the_token_gives_the_payload_back() -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Namespace": "default"}
    async with _client(_settings()) as client:
        sealed = await client.post("/codec/encode", json={"payloads": [PLAIN]}, headers=auth)
        opened = await client.post("/codec/decode", json=sealed.json(), headers=auth)
        plain = await client.post("/codec/decode", json={"payloads": [PLAIN]}, headers=auth)

    assert sealed.status_code == 200
    [payload] = sealed.json()["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
    assert b"Alex" not in base64.b64decode(payload["data"])
    assert opened.json() == {"payloads": [PLAIN]}
    assert plain.json() == {"payloads": [PLAIN]}  # from before the codec: as it is


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-0123456789", TOKEN])
async def test_without_the_token_nothing_is_decoded(authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with _client(_settings()) as client:
        answer = await client.post("/codec/decode", json={"payloads": [PLAIN]}, headers=headers)
    assert answer.status_code == 403 and "Alex" not in answer.text


async def test_cors_lets_the_web_ui_in_and_no_other_origin() -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    async with _client(_settings()) as client:
        ui = await client.options("/codec/decode", headers={**preflight, "Origin": UI})
        other = await client.options(
            "/codec/decode", headers={**preflight, "Origin": "https://evil.example"}
        )
    assert ui.status_code == 200 and ui.headers["access-control-allow-origin"] == UI
    assert "access-control-allow-origin" not in other.headers


async def test_a_malformed_body_or_a_foreign_key_is_a_clear_4xx() -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with _client(_settings()) as writer, _client(_settings()) as other:
        bad = await writer.post("/codec/decode", content=b"not json", headers=auth)
        sealed = await writer.post("/codec/encode", json={"payloads": [PLAIN]}, headers=auth)
        foreign = await other.post("/codec/decode", json=sealed.json(), headers=auth)
    assert bad.status_code == 400
    assert foreign.status_code == 422 and "does not open" in foreign.json()["detail"]


def test_keys_without_a_strong_token_refuse_to_serve() -> None:
    with pytest.raises(ServeError, match="CODEC_SERVER_TOKEN"):
        create_app(_settings(codec_server_token=SecretStr("short")))
