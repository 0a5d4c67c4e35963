"""Every query on API keys; each takes its user or tenant scope (or the key's hash)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.auth.api_keys.models import ApiKey
from kibitz.services.auth.models import User


async def add(session: AsyncSession, key: ApiKey) -> None:
    """Insert a key."""
    session.add(key)
    await session.flush()


async def count_active(session: AsyncSession, *, user_id: uuid.UUID, now: datetime) -> int:
    """How many of the user's keys still work (not revoked, not expired)."""
    query = (
        select(func.count())
        .select_from(ApiKey)
        .where(
            ApiKey.user_id == user_id,
            ApiKey.revoked_at.is_(None),
            (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > now),
        )
    )
    return int((await session.execute(query)).scalar_one())


async def list_page(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    limit: int,
    before: uuid.UUID | None,
) -> list[tuple[ApiKey, str]]:
    """Unrevoked keys of the tenant (of one user when `user_id` is given) with their user's
    email, newest first (ids are time-ordered), older than the cursor."""
    query = (
        select(ApiKey, User.email)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
    )
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    if before is not None:
        query = query.where(ApiKey.id < before)
    query = query.order_by(ApiKey.id.desc()).limit(limit)
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def get_in_tenant(
    session: AsyncSession, *, key_id: uuid.UUID, tenant_id: uuid.UUID, user_id: uuid.UUID | None
) -> ApiKey | None:
    """The unrevoked key with this id in the tenant (and of this user when `user_id` is given)."""
    query = select(ApiKey).where(
        ApiKey.id == key_id, ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None)
    )
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    return (await session.execute(query)).scalar_one_or_none()


async def revoke(session: AsyncSession, *, key_id: uuid.UUID, now: datetime) -> bool:
    """Mark the key revoked; False when it already was (a concurrent revocation won)."""
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def revoke_all_of_user(
    session: AsyncSession, *, user_id: uuid.UUID, tenant_id: uuid.UUID, now: datetime
) -> list[uuid.UUID]:
    """Mark every unrevoked key of the user in the tenant revoked; the ids of those it marked."""
    result = await session.execute(
        update(ApiKey)
        .where(
            ApiKey.user_id == user_id, ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None)
        )
        .values(revoked_at=now)
        .returning(ApiKey.id)
        .execution_options(synchronize_session=False)
    )
    return [row[0] for row in result.all()]


async def find_usable(
    session: AsyncSession, *, key_hash: str, now: datetime
) -> tuple[ApiKey, User] | None:
    """The working key with this hash (not revoked, not expired) and its user."""
    query = (
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(
            ApiKey.key_hash == key_hash,
            ApiKey.revoked_at.is_(None),
            (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > now),
        )
    )
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


async def touch(session: AsyncSession, *, key_id: uuid.UUID, now: datetime) -> None:
    """Record that the key was just used."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
