"""Re-encrypting every stored provider key under the first key of the setting
(`kibitz agents rotate-key`).

The operator puts the new key in front of the old ones (`KIBITZ_AGENTS_ENCRYPTION_KEY=new,old`)
on every replica, runs this, then drops the old keys. Meanwhile every replica reads both kinds
of ciphertext (MultiFernet decrypts with any key) and writes new ones under the new key, so
nothing is unreadable at any moment. Each key is re-encrypted in its own small transaction, only
if nobody changed it meanwhile; the plaintext never leaves `SecretCipher.rotate`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kibitz.kit.db import Database
from kibitz.kit.encryption import SecretCipher
from kibitz.services.agents.repository import StoredKeyRepository

# Keys re-encrypted per transaction: short transactions, so no replica waits on a row for long.
BATCH = 100


@dataclass
class RotationReport:
    """What a rotation did: counts only, never a key."""

    rotated: int = 0
    # Decrypted by none of the configured keys: left as they are.
    unreadable: int = 0
    # Changed by a replica while the rotation ran (stored under that replica's first key).
    changed_meanwhile: int = 0


async def rotate_stored_keys(
    database: Database,
    cipher: SecretCipher,
    *,
    batch: int = BATCH,
    after_batch: Callable[[RotationReport], Awaitable[None]] | None = None,
) -> RotationReport:
    """Re-encrypt every stored provider key under `cipher`'s first key."""
    report = RotationReport()
    after: uuid.UUID | None = None
    while True:
        async with database.transaction() as session:
            keys = StoredKeyRepository(session)
            page = await keys.page_after(after, limit=batch)
            for agent_id, token in page:
                try:
                    rotated = cipher.rotate(token)
                except ValueError:
                    report.unreadable += 1
                    continue
                if await keys.replace(agent_id, old=token, new=rotated):
                    report.rotated += 1
                else:
                    report.changed_meanwhile += 1
        if after_batch is not None:
            await after_batch(report)
        if len(page) < batch:
            return report
        after = page[-1][0]
