"""Secrets the case store keeps (a CalDAV password) are encrypted with a key that lives outside
the database, so a dump or a backup of the database alone reveals none of them."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretsKeyError(ValueError):
    """The secrets key is missing, malformed, or not the one a secret was encrypted with."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise SecretsKeyError(
                "SECRETS_KEY must be 32 bytes in urlsafe base64 (Fernet.generate_key())"
            ) from None

    @classmethod
    def from_key_or_file(cls, key: str | None, key_file: str) -> SecretBox:
        """The configured key, else the key file (created with mode 0600 on first use)."""
        if key:
            return cls(key.encode())
        return cls(_key_file(Path(key_file), Fernet.generate_key))

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise SecretsKeyError(
                "a stored secret cannot be decrypted with this secrets key (was it changed?)"
            ) from None


def link_secret(secret: str | None, key_file: str) -> bytes:
    """The secret that signs the pages' links (`LINK_SECRET`), else the key file's, created on
    first use (mode 0600) by whichever process needs it first: worker or web service."""
    if secret:
        if len(secret) < 16:
            raise SecretsKeyError("LINK_SECRET must be at least 16 characters")
        return secret.encode()
    return _key_file(Path(key_file), lambda: secrets.token_urlsafe(32).encode())


def _key_file(path: Path, generate: Callable[[], bytes]) -> bytes:
    """Read a key file, creating it (mode 0600) if missing. Two processes may race to create
    it: one wins (O_EXCL), the other reads what the winner wrote."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(generate())
    for _ in range(50):  # the other process may not have written it yet
        key = path.read_bytes().strip()
        if key:
            return key
        time.sleep(0.02)
    raise SecretsKeyError(f"the key file {path} is empty: delete it to have a new one made")
