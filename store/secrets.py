"""Secrets the case store keeps (a CalDAV password) are encrypted with a key that lives outside
the database, so a dump or a backup of the database alone reveals none of them."""

from __future__ import annotations

import os
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
        path = Path(key_file)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise SecretsKeyError(
                "a stored secret cannot be decrypted with this secrets key (was it changed?)"
            ) from None
