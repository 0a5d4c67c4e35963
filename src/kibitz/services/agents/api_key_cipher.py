"""Users' own provider keys, encrypted at rest with Fernet (see `kibitz.kit.encryption`)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from kibitz.kit.encryption import SecretCipher

KEY_FILE_NAME = "agents-encryption.key"


class ApiKeyCipher(SecretCipher):
    """The cipher of the agents service: `KIBITZ_AGENTS_ENCRYPTION_KEY`, or its own key file."""

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> Self:
        """The key kept under the data dir, created (mode 0600) on first use."""
        return cls.from_key_file(data_dir / KEY_FILE_NAME)
