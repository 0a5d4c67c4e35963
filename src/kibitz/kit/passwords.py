"""argon2id password hashing, always off the event loop."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP 2024 minimum for argon2id: m=19 MiB, t=2, p=1.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the account does not exist, so both answers cost the same time.
_DUMMY_HASH = _HASHER.hash("kibitz-dummy-password-for-timing")
# Hashing takes a whole core for ~50 ms; a pool one smaller than the machine leaves a core to
# the event loop, so a burst of logins queues here instead of starving every other request.
_HASHING = ThreadPoolExecutor(
    max_workers=max(1, (os.cpu_count() or 2) - 1), thread_name_prefix="argon2"
)


async def hash_password(password: str) -> str:
    """The argon2id hash of the password."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, _HASHER.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; with no hash, spends the same time and answers False."""

    def verify() -> bool:
        try:
            return _HASHER.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.get_running_loop().run_in_executor(_HASHING, verify)
