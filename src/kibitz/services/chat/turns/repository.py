"""Queries on the turns of several agents: their waiting replies and the job that runs them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.chat.models import Message, MessageStatus, ReplyJob, utcnow
from kibitz.services.chat.replies.orders import ReplyOrder

_MESSAGES = cast(Table, Message.__table__)
_JOBS = cast(Table, ReplyJob.__table__)


class TurnRepository:
    """A turn's later replies wait `pending`, without a job, until the reply before them ends;
    the job of the reply being generated carries the rest of the turn (`ReplyOrder.rest`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def start_waiting(self, message_id: uuid.UUID) -> bool:
        """Take a waiting reply to start it (touched, so it counts as fresh); False when it no
        longer waits (its turn was stopped)."""
        statement = (
            update(_MESSAGES)
            .where(_MESSAGES.c.id == message_id, _MESSAGES.c.status == MessageStatus.PENDING.value)
            .values(updated_at=utcnow())
        )
        result = await self.session.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def still_waiting(self, message_ids: Sequence[uuid.UUID]) -> None:
        """Touch the replies that still wait their turn: a turn under way is not stale, however
        long it runs (the sweep fails replies nobody advanced for `stale_generation_seconds`)."""
        if message_ids:
            await self.session.execute(
                update(_MESSAGES)
                .where(
                    _MESSAGES.c.id.in_(message_ids),
                    _MESSAGES.c.status == MessageStatus.PENDING.value,
                )
                .values(updated_at=utcnow())
            )

    async def stop_waiting(self, message_ids: Sequence[uuid.UUID]) -> Sequence[Message]:
        """End the replies that still wait as `stopped`, with no content; those it ended."""
        if not message_ids:
            return []
        waiting = (
            _MESSAGES.c.id.in_(message_ids),
            _MESSAGES.c.status == MessageStatus.PENDING.value,
        )
        ids = (await self.session.execute(select(_MESSAGES.c.id).where(*waiting))).scalars().all()
        if not ids:
            return []
        await self.session.execute(
            update(_MESSAGES)
            .where(_MESSAGES.c.id.in_(ids))
            .values(status=MessageStatus.STOPPED.value, updated_at=utcnow())
        )
        statement = select(Message).where(Message.id.in_(ids)).order_by(Message.id)
        return (await self.session.execute(statement)).scalars().all()

    async def turn_of(
        self, message_id: uuid.UUID, *, tenant_id: uuid.UUID, user_id: uuid.UUID
    ) -> ReplyOrder | None:
        """The order of the reply being generated in the turn this reply belongs to (None: it
        is not in a turn of several agents still under way)."""
        statement = select(_JOBS.c.payload).where(
            _JOBS.c.tenant_id == tenant_id, _JOBS.c.user_id == user_id
        )
        # A handful of rows: the user's replies in flight (the concurrency cap).
        for payload in (await self.session.execute(statement)).scalars():
            if not payload.get("rest"):
                continue
            order = ReplyOrder.from_payload(payload)
            if message_id == order.message_id or any(
                step.message_id == message_id for step in order.rest
            ):
                return order
        return None
