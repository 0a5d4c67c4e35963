"""The export's one query: a chat's messages in order, a batch at a time."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.chat.models import Message


async def messages_after(
    session: AsyncSession, chat_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
) -> Sequence[Message]:
    """Up to `limit` messages of the chat after `after`, oldest first (an index range scan on
    (chat_id, id); the chat's owner was checked by the caller)."""
    statement = select(Message).where(Message.chat_id == chat_id)
    if after is not None:
        statement = statement.where(Message.id > after)
    statement = statement.order_by(Message.id).limit(limit)
    return (await session.execute(statement)).scalars().all()
