"""Every query of the signing keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.auth.models import SigningKeyRecord


async def list_published_signing_keys(
    session: AsyncSession, *, now: datetime
) -> list[SigningKeyRecord]:
    """Every signing key not retired by `now` (a rotated-out key retires later), oldest first."""
    result = await session.execute(
        select(SigningKeyRecord)
        .where(or_(SigningKeyRecord.retired_at.is_(None), SigningKeyRecord.retired_at > now))
        .order_by(SigningKeyRecord.created_at, SigningKeyRecord.kid)
    )
    return list(result.scalars())


async def retire_signing_keys(session: AsyncSession, kids: list[str], *, at: datetime) -> None:
    """The keys stay published (verifying) until `at`, then are no longer."""
    await session.execute(
        update(SigningKeyRecord)
        .where(SigningKeyRecord.kid.in_(kids))
        .values(retired_at=at)
        .execution_options(synchronize_session=False)
    )


async def add_signing_key(session: AsyncSession, record: SigningKeyRecord) -> None:
    """Insert a signing key."""
    session.add(record)
    await session.flush()
