"""Every query of sessions; lookups are scoped by user id, family id or a token's hash."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.auth.models import RefreshToken, RefreshTokenFamily, SessionRevocation


async def add_refresh_token_family(session: AsyncSession, family: RefreshTokenFamily) -> None:
    """Insert a family of refresh tokens (one login)."""
    session.add(family)
    await session.flush()


async def add_refresh_token(session: AsyncSession, token: RefreshToken) -> None:
    """Insert a refresh token."""
    session.add(token)
    await session.flush()


async def get_refresh_token(
    session: AsyncSession, *, token_hash: str
) -> tuple[RefreshToken, RefreshTokenFamily] | None:
    """The refresh token with this hash and its family."""
    result = await session.execute(
        select(RefreshToken, RefreshTokenFamily)
        .join(RefreshTokenFamily, RefreshTokenFamily.id == RefreshToken.family_id)
        .where(RefreshToken.token_hash == token_hash)
    )
    row = result.first()
    return (row[0], row[1]) if row else None


async def spend_refresh_token(session: AsyncSession, *, token_id: uuid.UUID, now: datetime) -> bool:
    """Mark the token spent; False when it already was (a concurrent rotation won)."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.spent_at.is_(None))
        .values(spent_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def revoke_refresh_token_family(
    session: AsyncSession, *, family_id: uuid.UUID, now: datetime, reason: str
) -> None:
    """Stop every token of the family from working."""
    await session.execute(
        update(RefreshTokenFamily)
        .where(RefreshTokenFamily.id == family_id, RefreshTokenFamily.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )


async def list_live_families(
    session: AsyncSession, *, user_id: uuid.UUID
) -> list[RefreshTokenFamily]:
    """The user's sessions not revoked yet."""
    result = await session.scalars(
        select(RefreshTokenFamily).where(
            RefreshTokenFamily.user_id == user_id, RefreshTokenFamily.revoked_at.is_(None)
        )
    )
    return list(result)


async def get_family(session: AsyncSession, *, family_id: uuid.UUID) -> RefreshTokenFamily | None:
    """One session (refresh token family) by id."""
    return await session.get(RefreshTokenFamily, family_id)


async def add_session_revocation(session: AsyncSession, revocation: SessionRevocation) -> None:
    """Record a revoked session (once: a second revocation of it changes nothing)."""
    if await session.get(SessionRevocation, revocation.session_id) is None:
        session.add(revocation)
        await session.flush()


async def list_session_revocations(
    session: AsyncSession, *, now: datetime, since: datetime | None
) -> list[SessionRevocation]:
    """Revocations whose tokens may still be live, revoked after `since` (all when None)."""
    query = select(SessionRevocation).where(SessionRevocation.expires_at > now)
    if since is not None:
        query = query.where(SessionRevocation.revoked_at > since)
    return list((await session.execute(query.limit(10_000))).scalars())
