"""The Idempotency-Key of a send: claimed first, answered once, released when the send fails."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from kibitz.kit.errors import BadRequest, Conflict
from kibitz.services.chat.errors import IdempotencyKeyReused
from kibitz.services.chat.models import utcnow
from kibitz.services.chat.sending.repository import IdempotencyRepository
from kibitz.services.chat.storage import ChatDatabase

# 30 s: how long a repeated Idempotency-Key waits for the first request to finish.
_WAIT_SECONDS = 30.0
# 20 ms between looks at a key another request holds.
_POLL_SECONDS = 0.02
KEY_MAX = 255


def request_fingerprint(body: BaseModel, kind: str = "send") -> str:
    """A hash of the request (its kind: a send, an edit or a regeneration of which message, and
    its body), to tell a retry from a different request under the same key."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    if kind != "send":  # a send's fingerprint is its body alone, as keys stored earlier have it
        canonical = f"{kind}|{canonical}"
    return hashlib.sha256(canonical.encode()).hexdigest()


def checked_key(raw: str | None) -> str | None:
    """The header's key, trimmed (400 when empty or longer than 255 characters)."""
    if raw is None:
        return None
    key = raw.strip()
    if not 1 <= len(key) <= KEY_MAX:
        raise BadRequest(f"Idempotency-Key must be 1 to {KEY_MAX} characters.")
    return key


def _key_reused() -> IdempotencyKeyReused:
    return IdempotencyKeyReused("This Idempotency-Key was used with a different request.")


async def claim_key(
    database: ChatDatabase,
    *,
    user_id: uuid.UUID,
    key: str,
    body: BaseModel,
    ttl_seconds: int,
    kind: str = "send",
) -> dict[str, Any] | None:
    """Take the key (None), or the first answer given under it (waiting while in progress)."""
    fingerprint = request_fingerprint(body, kind)
    deadline = time.monotonic() + _WAIT_SECONDS
    expired_before = utcnow() - timedelta(seconds=ttl_seconds)
    while True:
        try:
            async with database.transaction() as session:
                keys = IdempotencyRepository(session)
                existing = await keys.get(user_id=user_id, key=key)
                if existing is not None and existing.created_at < expired_before:
                    await keys.remove(user_id=user_id, key=key)
                    await session.flush()
                    existing = None
                if existing is None:
                    await keys.claim(user_id=user_id, key=key, request_hash=fingerprint)
                    return None
                if existing.request_hash != fingerprint:
                    raise _key_reused()
                if existing.response is not None:
                    return dict(existing.response)
        except IntegrityError:
            pass  # another request claimed it first: wait for its answer
        # The first request is in progress: poll on the read path (no write lock).
        while True:
            if time.monotonic() > deadline:
                raise Conflict("A request with this Idempotency-Key is still being handled.")
            await asyncio.sleep(_POLL_SECONDS)
            async with database.reading() as session:
                existing = await IdempotencyRepository(session).get(user_id=user_id, key=key)
                if existing is None:
                    break  # the first attempt failed and let the key go: claim it
                if existing.request_hash != fingerprint:
                    raise _key_reused()
                if existing.response is not None:
                    return dict(existing.response)


@asynccontextmanager
async def released_on_failure(
    database: ChatDatabase, *, user_id: uuid.UUID, key: str | None
) -> AsyncIterator[None]:
    """A send that fails before answering lets its key go, so a retry may try again."""
    try:
        yield
    except BaseException:
        if key is not None:
            async with database.transaction() as session:
                await IdempotencyRepository(session).remove(
                    user_id=user_id, key=key, unanswered_only=True
                )
        raise
