"""Every query of the tenants service; each takes its tenant (or user) scope as an argument."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.tenants.models import (
    Invite,
    Membership,
    Tenant,
    UsageCounter,
    UsageReservation,
)


def _insert(session: AsyncSession, model: Any) -> Any:
    """The dialect's INSERT (both support ON CONFLICT)."""
    assert session.bind is not None
    if session.bind.dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


async def get_tenant(session: AsyncSession, *, tenant_id: uuid.UUID) -> Tenant | None:
    """The tenant, if it exists."""
    return await session.get(Tenant, tenant_id)


async def add_tenant(session: AsyncSession, tenant: Tenant) -> None:
    """Store a new tenant."""
    session.add(tenant)
    await session.flush()


async def set_plan(session: AsyncSession, *, tenant_id: uuid.UUID, plan: str) -> None:
    """Put the tenant on a plan."""
    await session.execute(update(Tenant).where(Tenant.id == tenant_id).values(plan=plan))


async def get_membership(session: AsyncSession, *, user_id: uuid.UUID) -> Membership | None:
    """The user's membership, if any."""
    return await session.get(Membership, user_id)


async def add_membership(session: AsyncSession, membership: Membership) -> None:
    """Store a membership."""
    session.add(membership)
    await session.flush()


async def list_members(
    session: AsyncSession, *, tenant_id: uuid.UUID, limit: int, after: uuid.UUID | None
) -> list[Membership]:
    """The tenant's members ordered by user id (time-ordered), after the cursor."""
    query = select(Membership).where(Membership.tenant_id == tenant_id)
    if after is not None:
        query = query.where(Membership.user_id > after)
    query = query.order_by(Membership.user_id).limit(limit)
    return list((await session.scalars(query)).all())


async def add_invite(session: AsyncSession, invite: Invite) -> None:
    """Store an invite."""
    session.add(invite)
    await session.flush()


async def get_invite_by_hash(session: AsyncSession, *, code_hash: str) -> Invite | None:
    """The invite with this code hash, whichever tenant it belongs to (the code is the secret)."""
    return await session.scalar(select(Invite).where(Invite.code_hash == code_hash))


async def claim_invite(
    session: AsyncSession, *, invite_id: uuid.UUID, user_id: uuid.UUID, now: datetime
) -> bool:
    """Mark the invite used by this user unless someone else used it first."""
    result = await session.execute(
        update(Invite)
        .where(Invite.id == invite_id, Invite.used_at.is_(None))
        .values(used_at=now, used_by=user_id)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def usage(session: AsyncSession, *, tenant_id: uuid.UUID, metric: str, period: str) -> int:
    """How much of the metric the tenant used in the period."""
    value = await session.scalar(
        select(UsageCounter.used).where(
            UsageCounter.tenant_id == tenant_id,
            UsageCounter.metric == metric,
            UsageCounter.period == period,
        )
    )
    return int(value or 0)


async def ensure_counter(
    session: AsyncSession, *, tenant_id: uuid.UUID, metric: str, period: str
) -> None:
    """Create the period's counter at zero unless it exists."""
    statement = (
        _insert(session, UsageCounter)
        .values(tenant_id=tenant_id, metric=metric, period=period, used=0)
        .on_conflict_do_nothing(index_elements=["tenant_id", "metric", "period"])
    )
    await session.execute(statement)


async def increment_within(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    metric: str,
    period: str,
    amount: int,
    limit: int,
) -> int | None:
    """Add `amount` only if the total stays within `limit`, in one statement (no lost update);
    the new total, or None when refused.

    One upsert creates the period's counter or adds to it, guarded by the limit, and returns
    the total: one round trip inside the write transaction instead of three."""
    if amount > limit:
        return None  # a new counter would start above the limit
    statement = _insert(session, UsageCounter).values(
        tenant_id=tenant_id, metric=metric, period=period, used=amount
    )
    statement = statement.on_conflict_do_update(
        index_elements=["tenant_id", "metric", "period"],
        set_={"used": UsageCounter.used + statement.excluded.used},
        where=UsageCounter.used + statement.excluded.used <= limit,
    ).returning(UsageCounter.used)
    row = (await session.execute(statement)).first()
    return None if row is None else int(row[0])


async def add_usage(
    session: AsyncSession, *, tenant_id: uuid.UUID, metric: str, period: str, amount: int
) -> None:
    """Add `amount` to the period's counter (an atomic upsert)."""
    statement = _insert(session, UsageCounter).values(
        tenant_id=tenant_id, metric=metric, period=period, used=amount
    )
    statement = statement.on_conflict_do_update(
        index_elements=["tenant_id", "metric", "period"],
        set_={"used": UsageCounter.used + statement.excluded.used},
    )
    await session.execute(statement)


async def get_reservation(
    session: AsyncSession, *, tenant_id: uuid.UUID, key: str
) -> UsageReservation | None:
    """A reservation made earlier with this key, if any."""
    return await session.get(UsageReservation, (tenant_id, key))


async def claim_reservation_key(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    key: str,
    metric: str,
    period: str,
    amount: int,
    now: datetime,
) -> bool:
    """Record the key; False when a reservation with it exists (a retry of the same work)."""
    result = await session.execute(
        _insert(session, UsageReservation)
        .values(
            tenant_id=tenant_id,
            key=key,
            metric=metric,
            period=period,
            amount=amount,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
    )
    return bool(getattr(result, "rowcount", 0) == 1)
