"""Every query of accounts (users); lookups are scoped by user id or email. Sessions and
signing keys keep their queries in their own packages."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.auth.models import User


async def get_user(session: AsyncSession, *, user_id: uuid.UUID) -> User | None:
    """The user with this id."""
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, *, email: str) -> User | None:
    """The user with this (normalised) email."""
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def email_taken(session: AsyncSession, *, email: str) -> bool:
    """Whether a user already has this (normalised) email."""
    result = await session.execute(select(User.id).where(User.email == email))
    return result.first() is not None


async def add_user(session: AsyncSession, user: User) -> None:
    """Insert the user (flushes, so a duplicate email raises here)."""
    session.add(user)
    await session.flush()


async def delete_user(session: AsyncSession, *, user_id: uuid.UUID) -> None:
    """Delete the account; its sessions, tokens, API keys and linked identities go with it."""
    await session.execute(delete(User).where(User.id == user_id))
