"""Every query of the users service; each takes the user it is about as an argument."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.users.models import Profile


async def get_profile(session: AsyncSession, *, auth_user_id: uuid.UUID) -> Profile | None:
    """The user's profile, if it exists."""
    return await session.scalar(select(Profile).where(Profile.auth_user_id == auth_user_id))


async def add_profile_once(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert the profile unless one exists for its auth user; True when this call made it."""
    assert session.bind is not None
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    result = await session.execute(
        dialect.insert(Profile)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["auth_user_id"])
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def count_profiles(session: AsyncSession, *, auth_user_id: uuid.UUID) -> int:
    """How many profiles the auth user has (one, or none)."""
    rows = await session.scalars(select(Profile.id).where(Profile.auth_user_id == auth_user_id))
    return len(rows.all())


async def delete_profile(session: AsyncSession, *, auth_user_id: uuid.UUID) -> None:
    """Delete the user's profile and preferences."""
    await session.execute(delete(Profile).where(Profile.auth_user_id == auth_user_id))
