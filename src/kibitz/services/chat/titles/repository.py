"""A title proposal's queries: a chat's first exchange, and a rename that yields to a person's."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.chat.models import Chat, Message, Sender


class FirstExchange(NamedTuple):
    """What a title is proposed from: the chat's title now, its first message and first reply."""

    title: str
    first_message: str
    first_reply_id: uuid.UUID


class TitleRepository:
    """Reads and writes of chat titles."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def first_exchange(self, chat_id: uuid.UUID) -> FirstExchange | None:
        """The chat's title, first user message and first reply's id (None without both)."""
        title = await self.session.scalar(select(Chat.title).where(Chat.id == chat_id))
        if title is None:
            return None
        first = {}
        for sender in (Sender.USER, Sender.AGENT):
            # Ids are time-ordered (UUIDv7): the smallest is the first; (chat_id, id) is indexed.
            statement = (
                select(Message.id, Message.content)
                .where(Message.chat_id == chat_id, Message.sender == sender.value)
                .order_by(Message.id)
                .limit(1)
            )
            row = (await self.session.execute(statement)).first()
            if row is None:
                return None
            first[sender] = row
        return FirstExchange(
            title=title,
            first_message=first[Sender.USER].content,
            first_reply_id=first[Sender.AGENT].id,
        )

    async def retitle(
        self, chat_id: uuid.UUID, *, expected: str, title: str, at: datetime
    ) -> Chat | None:
        """Rename the chat unless its title is no longer `expected` (someone renamed it
        meanwhile); the renamed chat, or None."""
        statement = (
            update(Chat)
            .where(Chat.id == chat_id, Chat.title == expected)
            .values(title=title, updated_at=at)
        )
        result = await self.session.execute(
            statement, execution_options={"synchronize_session": False}
        )
        if not getattr(result, "rowcount", 0):
            return None
        return await self.session.get(Chat, chat_id, populate_existing=True)
