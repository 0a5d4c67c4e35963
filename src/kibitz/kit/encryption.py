"""Secrets at rest (and sealed browser state) with Fernet: AES-128-CBC + HMAC-SHA256.

Keys come from a setting (comma-separated, the first encrypts, all decrypt: rotation) or, when
none is configured (all-in-one), from a key file generated under the data dir.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Self

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from kibitz.kit.private_files import FILE_MODE, private_directory


class SecretCipher:
    """Encrypts with the first key, decrypts with any (so keys can be rotated)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self._key_count = len(keys)

    @classmethod
    def from_setting(cls, value: str) -> Self:
        """Keys from a setting: comma-separated Fernet keys."""
        return cls([part.strip().encode() for part in value.split(",") if part.strip()])

    @classmethod
    def from_key_file(cls, path: Path) -> Self:
        """The key kept in `path`, created (mode 0600) on first use."""
        if not path.exists():
            private_directory(path.parent)
            # O_EXCL: two processes starting at once must not overwrite each other's key.
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(Fernet.generate_key())
        os.chmod(path, FILE_MODE)  # made by an older version, perhaps world-readable
        key = path.read_bytes().strip()
        for _ in range(100):  # another process created the file and is still writing it
            if key:
                break
            time.sleep(0.01)
            key = path.read_bytes().strip()
        return cls([key])

    @property
    def key_count(self) -> int:
        """How many keys decrypt (the first of them encrypts)."""
        return self._key_count

    def encrypt(self, plaintext: str) -> str:
        """A Fernet token for the text."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str, *, max_age_seconds: int | None = None) -> str:
        """The text back; ValueError when the token is forged, made with an unknown key, or
        (with `max_age_seconds`) older than that."""
        try:
            return self._fernet.decrypt(token.encode(), ttl=max_age_seconds).decode()
        except InvalidToken as exc:
            raise ValueError("the token cannot be decrypted with the configured keys") from exc

    def rotate(self, token: str) -> str:
        """The same text encrypted under the first key (ValueError when no key decrypts it);
        the text itself is never at hand to whoever calls this."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("the token cannot be decrypted with the configured keys") from exc


def key_problem(value: str) -> str | None:
    """Why a setting of comma-separated Fernet keys cannot be used (None when it can), without
    repeating any key."""
    keys = [part.strip() for part in value.split(",") if part.strip()]
    if not keys:
        return "needs at least one Fernet key"
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            return (
                f"key {position} of {len(keys)} is not a Fernet key (32 url-safe base64-encoded "
                "bytes, e.g. from Fernet.generate_key())"
            )
    return None
