"""Users' own provider keys, encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_FILE_NAME = "agents-encryption.key"


class ApiKeyCipher:
    """Encrypts with the first key, decrypts with any (so keys can be rotated)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    @classmethod
    def from_setting(cls, value: str) -> ApiKeyCipher:
        """Keys from `KIBITZ_AGENTS_ENCRYPTION_KEY` (comma-separated Fernet keys)."""
        return cls([part.strip().encode() for part in value.split(",") if part.strip()])

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> ApiKeyCipher:
        """The key kept under the data dir, created (mode 0600) on first use."""
        path = data_dir / KEY_FILE_NAME
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two processes starting at once must not overwrite each other's key.
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(Fernet.generate_key())
        key = path.read_bytes().strip()
        for _ in range(100):  # another process created the file and is still writing it
            if key:
                break
            time.sleep(0.01)
            key = path.read_bytes().strip()
        return cls([key])

    def encrypt(self, plaintext: str) -> str:
        """A Fernet token for the key."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The key back; ValueError when the token was made with an unknown key."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("the stored key cannot be decrypted with the configured keys") from exc
