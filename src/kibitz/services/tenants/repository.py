"""Every query of the tenants service; each takes its tenant (or user) scope as an argument."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.db import Database, delete_in_batches
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


# Built once: building and cache-keying a statement per call costs more than running it.
# They name the tables, not the mapped classes: the ORM re-keys its statements per call (and
# an ORM INSERT given parameters takes the bulk path, which reports no rowcount).
_prebuilt_statements: dict[tuple[str, str], Any] = {}
_counters = UsageCounter.__table__
_reservations = UsageReservation.__table__

_tenants = Tenant.__table__
_PLAN_AND_OVERRIDES = select(_tenants.c.plan, _tenants.c.limits).where(
    _tenants.c.id == bindparam("tenant_id")
)
# Refusals only: the ORM's per-call cost does not matter here.
_RELEASE_RESERVATION_KEY = delete(UsageReservation).where(
    UsageReservation.tenant_id == bindparam("tenant_id"), UsageReservation.key == bindparam("key")
)
_USAGE = select(_counters.c.used).where(
    _counters.c.tenant_id == bindparam("tenant_id"),
    _counters.c.metric == bindparam("metric"),
    _counters.c.period == bindparam("period"),
)


def _prebuilt(session: AsyncSession, name: str, build: Callable[[AsyncSession], Any]) -> Any:
    """The statement `build` makes for the session's dialect, built once per dialect."""
    assert session.bind is not None
    key = (session.bind.dialect.name, name)
    statement = _prebuilt_statements.get(key)
    if statement is None:
        statement = _prebuilt_statements[key] = build(session)
    return statement


async def _autoflush(session: AsyncSession) -> None:
    """Flush pending ORM changes first, as the ORM does before its own statements."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        await session.flush()


def _counter_upsert(session: AsyncSession) -> Any:
    return _insert(session, _counters).values(
        tenant_id=bindparam("tenant_id"),
        metric=bindparam("metric"),
        period=bindparam("period"),
        used=bindparam("amount"),
    )


def _build_increment_within(session: AsyncSession) -> Any:
    statement = _counter_upsert(session)
    return statement.on_conflict_do_update(
        index_elements=["tenant_id", "metric", "period"],
        set_={"used": _counters.c.used + statement.excluded.used},
        where=_counters.c.used + statement.excluded.used <= bindparam("limit"),
    ).returning(_counters.c.used)


def _build_add_usage(session: AsyncSession) -> Any:
    statement = _counter_upsert(session)
    return statement.on_conflict_do_update(
        index_elements=["tenant_id", "metric", "period"],
        set_={"used": _counters.c.used + statement.excluded.used},
    )


def _build_claim_reservation_key(session: AsyncSession) -> Any:
    return (
        _insert(session, _reservations)
        .values(
            tenant_id=bindparam("tenant_id"),
            key=bindparam("key"),
            metric=bindparam("metric"),
            period=bindparam("period"),
            amount=bindparam("amount"),
            created_at=bindparam("created_at"),
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
    )


async def get_tenant(session: AsyncSession, *, tenant_id: uuid.UUID) -> Tenant | None:
    """The tenant, if it exists."""
    return await session.get(Tenant, tenant_id)


async def plan_and_overrides(
    session: AsyncSession, *, tenant_id: uuid.UUID
) -> tuple[str, dict[str, Any] | None] | None:
    """The tenant's plan id and limit overrides, if the tenant exists (no entity built)."""
    row = (await session.execute(_PLAN_AND_OVERRIDES, {"tenant_id": tenant_id})).first()
    return None if row is None else (row.plan, row.limits)


async def add_tenant(session: AsyncSession, tenant: Tenant) -> None:
    """Store a new tenant."""
    session.add(tenant)
    await session.flush()


async def set_plan(session: AsyncSession, *, tenant_id: uuid.UUID, plan: str) -> None:
    """Put the tenant on a plan."""
    await session.execute(update(Tenant).where(Tenant.id == tenant_id).values(plan=plan))


async def advance_billing_sequence(
    session: AsyncSession, *, tenant_id: uuid.UUID, sequence: int
) -> bool:
    """Record a billing change's sequence; False when the tenant is unknown or has seen a newer
    one (the guard is in the UPDATE itself, so concurrent deliveries cannot both pass)."""
    result = await session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id, Tenant.billing_sequence < sequence)
        .values(billing_sequence=sequence)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def get_membership(session: AsyncSession, *, user_id: uuid.UUID) -> Membership | None:
    """The user's membership, if any."""
    return await session.get(Membership, user_id)


async def add_membership(session: AsyncSession, membership: Membership) -> None:
    """Store a membership."""
    session.add(membership)
    await session.flush()


async def remove_membership(session: AsyncSession, *, user_id: uuid.UUID) -> None:
    """Delete the user's membership."""
    await session.execute(delete(Membership).where(Membership.user_id == user_id))


async def count_owners(session: AsyncSession, *, tenant_id: uuid.UUID) -> int:
    """How many owners the tenant has."""
    found = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.tenant_id == tenant_id, Membership.role == "owner")
    )
    return int(found or 0)


async def count_members(session: AsyncSession, *, tenant_id: uuid.UUID) -> int:
    """How many people belong to the tenant."""
    found = await session.scalar(
        select(func.count()).select_from(Membership).where(Membership.tenant_id == tenant_id)
    )
    return int(found or 0)


async def longest_standing_member(
    session: AsyncSession, *, tenant_id: uuid.UUID
) -> Membership | None:
    """The admin who joined first, else the member who did (None: nobody is left)."""
    query = (
        select(Membership)
        .where(Membership.tenant_id == tenant_id)
        .order_by((Membership.role != "admin"), Membership.joined_at, Membership.user_id)
        .limit(1)
    )
    return (await session.scalars(query)).first()


async def has_members(session: AsyncSession, *, tenant_id: uuid.UUID) -> bool:
    """Whether anyone belongs to the tenant."""
    found = await session.scalar(
        select(Membership.user_id).where(Membership.tenant_id == tenant_id).limit(1)
    )
    return found is not None


async def remove_tenant(session: AsyncSession, *, tenant_id: uuid.UUID) -> None:
    """Delete a tenant that nobody belongs to (a registration that did not complete)."""
    await session.execute(delete(Invite).where(Invite.tenant_id == tenant_id))
    await session.execute(delete(Tenant).where(Tenant.id == tenant_id))


async def release_invite(session: AsyncSession, *, used_by: uuid.UUID) -> bool:
    """Make the invite this user claimed usable again (False: they claimed none)."""
    result = await session.execute(
        update(Invite).where(Invite.used_by == used_by).values(used_at=None, used_by=None)
    )
    return bool(getattr(result, "rowcount", 0))


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
    await _autoflush(session)
    value = await session.scalar(
        _USAGE, {"tenant_id": tenant_id, "metric": metric, "period": period}
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
    statement = _prebuilt(session, "increment_within", _build_increment_within)
    await _autoflush(session)
    parameters = {
        "tenant_id": tenant_id,
        "metric": metric,
        "period": period,
        "amount": amount,
        "limit": limit,
    }
    row = (await session.execute(statement, parameters)).first()
    return None if row is None else int(row[0])


async def add_usage(
    session: AsyncSession, *, tenant_id: uuid.UUID, metric: str, period: str, amount: int
) -> None:
    """Add `amount` to the period's counter (an atomic upsert)."""
    statement = _prebuilt(session, "add_usage", _build_add_usage)
    await _autoflush(session)
    await session.execute(
        statement, {"tenant_id": tenant_id, "metric": metric, "period": period, "amount": amount}
    )


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
    statement = _prebuilt(session, "claim_reservation_key", _build_claim_reservation_key)
    await _autoflush(session)
    result = await session.execute(
        statement,
        {
            "tenant_id": tenant_id,
            "key": key,
            "metric": metric,
            "period": period,
            "amount": amount,
            "created_at": now,
        },
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def release_reservation_key(session: AsyncSession, *, tenant_id: uuid.UUID, key: str) -> None:
    """Forget a key claimed in this transaction (its reservation was refused: a retry may pass)."""
    await session.execute(_RELEASE_RESERVATION_KEY, {"tenant_id": tenant_id, "key": key})


async def forget_reservation_keys(database: Database, *, created_before: datetime) -> int:
    """Forget reservation keys made before `created_before` (1000 per transaction); how many."""
    table = cast(Table, UsageReservation.__table__)
    condition = table.c.created_at < created_before
    return await delete_in_batches(database, table, condition, batch=1000)
