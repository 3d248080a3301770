"""Encrypted history: every payload Temporal stores (workflow and activity inputs and results,
Update answers, queries, the summaries and details the Web UI shows) is sealed with AES-GCM
before it leaves this process, so a Temporal server, its database or its backups reveal no
note, no name, no plan without the practice's key.

Keys rotate: `PAYLOAD_KEYS` lists `id=base64key` pairs; the first encrypts, all of them decrypt,
and each payload names its key id in its metadata. A payload without our encoding (written
before the codec, or by a tool that does not use it) is passed through as it is, so histories
recorded before encryption still replay.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    EncodingPayloadConverter,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
UNOPENED = b"binary/unopened"  # a payload that claims ENCODING but no key here opens it
REASON = "unopened-reason"
KEY_ID = "encryption-key-id"
_NONCE = 12


class PayloadKeyError(ValueError):
    """The payload keys are malformed, or a payload names a key this process does not have."""


def parse_keys(text: str) -> dict[str, bytes]:
    """`id=base64key,id2=base64key` (first encrypts) -> {id: 32-byte key}, in that order."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key_id, _, encoded = item.partition("=")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            key = b""
        if not key_id.strip() or len(key) != 32:
            raise PayloadKeyError(
                "PAYLOAD_KEYS: each entry is id=<32 random bytes in base64>, e.g. from "
                "`openssl rand -base64 32`"
            )
        keys[key_id.strip()] = key
    if not keys:
        raise PayloadKeyError("PAYLOAD_KEYS: no key given")
    return keys


class EncryptionCodec(PayloadCodec):
    """AES-GCM over each whole payload. `strict` (the codec server's): a payload that claims
    our encoding but does not open is an error. Not strict (every process's data converter):
    it becomes an `UNOPENED` payload, which raises the same error only where something tries
    to read it. The worker opens every payload of a workflow task before the workflow runs,
    and an error there fails the task on every retry: a hand-made signal or Update claiming
    to be sealed (`--input-meta encoding=binary/encrypted`) wedged the case for good. As a
    value the workflow cannot read, an Update's validator rejects it, and a signal is
    recorded as rejected without being read."""

    def __init__(self, keys: dict[str, bytes], strict: bool = True) -> None:
        if not keys:
            raise PayloadKeyError("an encryption codec needs at least one key")
        self._current = next(iter(keys))
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._strict = strict

    @property
    def key_id(self) -> str:
        return self._current

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self._current]
        sealed = []
        for payload in payloads:
            nonce = os.urandom(_NONCE)
            data = nonce + cipher.encrypt(nonce, payload.SerializeToString(), None)
            sealed.append(
                Payload(metadata={"encoding": ENCODING, KEY_ID: self._current.encode()}, data=data)
            )
        return sealed

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        opened = []
        for payload in payloads:
            try:
                opened.append(self._open(payload))
            except PayloadKeyError as exc:
                if self._strict:
                    raise
                opened.append(Payload(metadata={"encoding": UNOPENED, REASON: str(exc).encode()}))
        return opened

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # from before the codec: as it is
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "backslashreplace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            shown = key_id if len(key_id) <= 64 else key_id[:64] + "..."
            raise PayloadKeyError(f"payload sealed with key {shown!r}, not in PAYLOAD_KEYS")
        try:
            plain = cipher.decrypt(payload.data[:_NONCE], payload.data[_NONCE:], None)
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce and a tag
            raise PayloadKeyError(
                f"payload sealed with key {key_id!r} does not open with that key"
            ) from None
        original = Payload()
        try:
            original.ParseFromString(plain)
        except DecodeError:  # sealed with our key, but not a payload: made by hand
            raise PayloadKeyError(f"payload sealed with key {key_id!r} holds no payload") from None
        return original


class _UnopenedConverter(EncodingPayloadConverter):
    """Reads an `UNOPENED` payload by raising why it could not be opened."""

    @property
    def encoding(self) -> str:
        return UNOPENED.decode()

    def to_payload(self, value: Any) -> Payload | None:
        return None  # never writes one

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        raise PayloadKeyError(payload.metadata.get(REASON, b"a sealed payload").decode())


class SealedPayloadConverter(PydanticPayloadConverter):
    """The pydantic payload converter, which also knows `UNOPENED` payloads."""

    def __init__(self) -> None:
        super().__init__()
        # Last: it never writes. (The composite keeps its converters as built at init.)
        CompositePayloadConverter.__init__(self, *self.converters.values(), _UnopenedConverter())


def data_converter(payload_keys: str | None) -> DataConverter:
    """The pydantic data converter, sealed when keys are configured."""
    if not payload_keys:
        return pydantic_data_converter
    codec = EncryptionCodec(parse_keys(payload_keys), strict=False)
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=SealedPayloadConverter,
        payload_codec=codec,
    )


def describe_encryption(payload_keys: str | None) -> str:
    if not payload_keys:
        return "payloads NOT encrypted (set PAYLOAD_KEYS to seal Temporal history)"
    return f"payloads encrypted with AES-GCM, key {next(iter(parse_keys(payload_keys)))}"
