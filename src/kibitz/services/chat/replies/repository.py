"""Queries on reply jobs (the durable half of each reply in flight and its lease) and on the
delegated replies an orchestrated turn has made."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.chat.models import Message, ReplyJob, utcnow

_JOBS = cast(Table, ReplyJob.__table__)
_MESSAGES = cast(Table, Message.__table__)
_INSERT = insert(_JOBS)
_RENEW = (
    update(_JOBS)
    .where(_JOBS.c.message_id == bindparam("job_id"), _JOBS.c.holder == bindparam("job_holder"))
    .values(lease_until=bindparam("until"))
)
# Taken only when nobody holds it (never leased, or its lease lapsed: its generator died), or
# from whoever presents the token it was handed over with.
_CLAIM = (
    update(_JOBS)
    .where(
        _JOBS.c.message_id == bindparam("job_id"),
        or_(
            _JOBS.c.lease_until.is_(None),
            _JOBS.c.lease_until < bindparam("now"),
            _JOBS.c.holder == bindparam("presented"),
        ),
    )
    .values(
        holder=bindparam("job_holder"),
        lease_until=bindparam("until"),
        attempts=_JOBS.c.attempts + 1,
    )
    .returning(_JOBS.c.attempts, _JOBS.c.payload)
)
# Handed to the work queue again by a sweep: leased to the token the queued job carries.
_HAND_OVER = (
    update(_JOBS)
    .where(
        _JOBS.c.message_id == bindparam("job_id"),
        or_(_JOBS.c.lease_until.is_(None), _JOBS.c.lease_until < bindparam("now")),
    )
    .values(holder=bindparam("job_holder"), lease_until=bindparam("until"))
)
_DELETE = delete(_JOBS).where(_JOBS.c.message_id == bindparam("job_id"))


@dataclass(frozen=True)
class Claimed:
    """A reply job this generator now holds: its token, how many times generation started (this
    one too) and the order."""

    holder: str
    attempts: int
    payload: dict[str, Any]


class ReplyJobRepository:
    """The `reply_jobs` rows; a row exists exactly while its reply is in flight."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_user(self, user_id: uuid.UUID) -> None:
        """Serialise this user's sends until the transaction ends, so counting their replies in
        flight and adding one is atomic across replicas (PostgreSQL: a transaction advisory
        lock; SQLite: every write transaction already holds the database's one write lock)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"chat-replies:{user_id}"},
            )

    async def add(
        self,
        *,
        message_id: uuid.UUID,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        payload: dict[str, Any],
        holder: str,
        lease_seconds: float,
    ) -> None:
        """The job of a new reply, leased to `holder` already (its first delivery skips the
        claim: one statement less before the agent is asked)."""
        now = utcnow()
        row = {
            "message_id": message_id,
            "tenant_id": tenant_id,
            "user_id": user_id,
            "payload": payload,
            "holder": holder,
            "lease_until": now + timedelta(seconds=lease_seconds),
            "attempts": 1,
            "created_at": now,
        }
        await self.session.execute(_INSERT, [row])

    async def claim(
        self, message_id: uuid.UUID, *, holder: str, presented: str | None, lease_seconds: float
    ) -> Claimed | None:
        """Take the job if nobody holds it or `presented` is its token (None: finished, or
        another generator holds it)."""
        now = utcnow()
        parameters = {
            "job_id": message_id,
            "job_holder": holder,
            "presented": presented or "",
            "now": now,
            "until": now + timedelta(seconds=lease_seconds),
        }
        row = (await self.session.execute(_CLAIM, parameters)).first()
        if row is None:
            return None
        return Claimed(holder=holder, attempts=int(row[0]), payload=dict(row[1]))

    async def hand_over(self, message_id: uuid.UUID, *, holder: str, lease_seconds: float) -> bool:
        """Lease a job nobody holds to `holder`, the token of the job a sweep queues for it
        (False: someone took it meanwhile)."""
        now = utcnow()
        parameters = {
            "job_id": message_id,
            "job_holder": holder,
            "now": now,
            "until": now + timedelta(seconds=lease_seconds),
        }
        result = await self.session.execute(_HAND_OVER, parameters)
        return bool(getattr(result, "rowcount", 0))

    async def renew(self, message_id: uuid.UUID, *, holder: str, lease_seconds: float) -> bool:
        """Extend the lease; False when the holder lost it (it lapsed and was taken)."""
        until = utcnow() + timedelta(seconds=lease_seconds)
        parameters = {"job_id": message_id, "job_holder": holder, "until": until}
        result = await self.session.execute(_RENEW, parameters)
        return bool(getattr(result, "rowcount", 0))

    async def remove(self, message_id: uuid.UUID) -> None:
        """The reply is finished: its job goes (and its user's slot with it)."""
        await self.session.execute(_DELETE, {"job_id": message_id})

    async def lapsed(self, *, now: datetime, unclaimed_before: datetime) -> Sequence[uuid.UUID]:
        """Jobs whose generator went away: the lease lapsed (or it was never taken)."""
        statement = select(_JOBS.c.message_id).where(
            or_(
                _JOBS.c.lease_until < now,
                (_JOBS.c.lease_until.is_(None)) & (_JOBS.c.created_at < unclaimed_before),
            )
        )
        return (await self.session.execute(statement)).scalars().all()


class DelegationRepository:
    """An orchestrated turn's delegated replies: messages marked `delegated` whose parent is the
    reply that asked for them (nested as deep as delegations go)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def ancestor(self, message_id: uuid.UUID, *, levels: int) -> uuid.UUID:
        """The message `levels` parents above this one (itself for 0; the highest one found
        when the chain ends earlier)."""
        for _ in range(levels):
            statement = select(_MESSAGES.c.parent_id).where(_MESSAGES.c.id == message_id)
            parent = (await self.session.execute(statement)).scalar_one_or_none()
            if parent is None:
                break
            message_id = parent
        return message_id

    async def count_under(self, chat_id: uuid.UUID, root_id: uuid.UUID, *, depth: int) -> int:
        """How many delegated replies hang under `root_id`, down to `depth` levels."""
        total, level = 0, [root_id]
        for _ in range(depth):
            statement = select(_MESSAGES.c.id).where(
                _MESSAGES.c.chat_id == chat_id,
                _MESSAGES.c.parent_id.in_(level),
                _MESSAGES.c.delegated.is_(True),
            )
            level = list((await self.session.execute(statement)).scalars())
            if not level:
                break
            total += len(level)
        return total
