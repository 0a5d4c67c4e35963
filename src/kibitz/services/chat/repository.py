"""Every query of the chat service; each user-facing one takes the owner as a parameter."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Table,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.chat.models import (
    IN_FLIGHT,
    Chat,
    IdempotencyKey,
    Message,
    MessageStatus,
    ReplyJob,
    Sender,
    utcnow,
)

# The hot writes (every send and every reply) go through the Core tables: the ORM's bulk-update
# path (attribute coercion, session synchronisation) costs more than the statement itself.
_CHATS = cast(Table, Chat.__table__)
_MESSAGES = cast(Table, Message.__table__)

# The statements of every reply are built once, with placeholders: building and cache-keying a
# statement on each call costs SQLAlchemy several times what running it does.
_TOUCH = update(_CHATS).where(_CHATS.c.id == bindparam("chat_id"))
_TOUCH_CHAT = _TOUCH.values(updated_at=bindparam("at"))
_TOUCH_AND_RETITLE = _TOUCH.values(updated_at=bindparam("at"), title=bindparam("title"))
_INSERT_MESSAGES = insert(_MESSAGES)
_REPLY_IN_FLIGHT = update(_MESSAGES).where(
    _MESSAGES.c.id == bindparam("message_id"), _MESSAGES.c.status.in_(IN_FLIGHT)
)
_SAVE_PROGRESS = _REPLY_IN_FLIGHT.values(
    content=bindparam("content"), status=bindparam("status"), updated_at=bindparam("at")
)
_FINISH = _REPLY_IN_FLIGHT.values(
    content=bindparam("content"),
    status=bindparam("status"),
    input_tokens=bindparam("input_tokens"),
    output_tokens=bindparam("output_tokens"),
    model=bindparam("model"),
    finish_reason=bindparam("finish_reason"),
    error=bindparam("error"),
    citations=bindparam("citations", type_=JSON),
    updated_at=bindparam("at"),
)


# How far before a resume point a reply may have started and still be streaming (ids are
# UUIDv7: their first 48 bits are the creation time in ms), so a reconnect reads a bounded range.
_STREAMING_WINDOW_MS = 15 * 60 * 1000


def _written_before(message_id: uuid.UUID, milliseconds: int) -> uuid.UUID:
    """The smallest UUIDv7 of `milliseconds` before `message_id` was made."""
    created_ms = message_id.int >> 80
    return uuid.UUID(int=max(0, created_ms - milliseconds) << 80)


class ChatRepository:
    """Queries on chats and messages."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_chat(
        self, chat_id: uuid.UUID, *, tenant_id: uuid.UUID, user_id: uuid.UUID
    ) -> Chat | None:
        """The chat if it belongs to this user of this tenant."""
        statement = select(Chat).where(
            Chat.id == chat_id, Chat.tenant_id == tenant_id, Chat.user_id == user_id
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_chat_by_id(self, chat_id: uuid.UUID) -> Chat | None:
        """A chat by id alone (for the generation task, which acts for its owner)."""
        return await self.session.get(Chat, chat_id)

    async def list_chats(
        self,
        *,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> Sequence[Chat]:
        """The user's chats, most recently active first, after a keyset cursor."""
        statement = select(Chat).where(Chat.tenant_id == tenant_id, Chat.user_id == user_id)
        if after is not None:
            updated_at, chat_id = after
            statement = statement.where(
                or_(
                    Chat.updated_at < updated_at,
                    and_(Chat.updated_at == updated_at, Chat.id < chat_id),
                )
            )
        statement = statement.order_by(Chat.updated_at.desc(), Chat.id.desc()).limit(limit)
        return (await self.session.execute(statement)).scalars().all()

    def add(self, row: Chat | Message) -> None:
        """Stage a new row."""
        self.session.add(row)

    async def insert_messages(self, messages: Sequence[Message]) -> None:
        """Insert new messages at once (plain rows: no unit of work to track them). Attributes
        no message sets are left out, so the columns' defaults apply; every row has the same keys
        (an executemany takes its columns from the first row)."""
        keys = [
            column.key
            for column in _MESSAGES.columns
            if any(getattr(message, column.key) is not None for message in messages)
        ]
        rows = [{key: getattr(message, key) for key in keys} for message in messages]
        await self.session.execute(_INSERT_MESSAGES, rows)

    async def delete_chat(self, chat: Chat) -> None:
        """Delete a chat, its messages and their reply jobs."""
        messages = select(Message.id).where(Message.chat_id == chat.id)
        await self.session.execute(delete(ReplyJob).where(ReplyJob.message_id.in_(messages)))
        await self.session.execute(delete(Message).where(Message.chat_id == chat.id))
        await self.session.delete(chat)

    async def delete_all_of_user(self, user_id: uuid.UUID) -> int:
        """Delete every chat of the user with its messages and reply jobs, and their
        idempotency keys (the account is gone); how many chats went."""
        chats = select(Chat.id).where(Chat.user_id == user_id)
        messages = select(Message.id).where(Message.chat_id.in_(chats))
        await self.session.execute(delete(ReplyJob).where(ReplyJob.message_id.in_(messages)))
        await self.session.execute(delete(Message).where(Message.chat_id.in_(chats)))
        await self.session.execute(delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id))
        result = await self.session.execute(delete(Chat).where(Chat.user_id == user_id))
        return int(getattr(result, "rowcount", 0) or 0)

    async def touch_chat(
        self, chat_id: uuid.UUID, at: datetime, *, title: str | None = None
    ) -> None:
        """Mark the chat as active now (it moves to the top of the list), maybe retitled."""
        if title:
            await self.session.execute(
                _TOUCH_AND_RETITLE, {"chat_id": chat_id, "at": at, "title": title}
            )
        else:
            await self.session.execute(_TOUCH_CHAT, {"chat_id": chat_id, "at": at})

    async def history_page(
        self, chat_id: uuid.UUID, *, limit: int, before: uuid.UUID | None
    ) -> Sequence[Message]:
        """Up to `limit` messages older than `before`, newest first (an index range scan)."""
        statement = select(Message).where(Message.chat_id == chat_id)
        if before is not None:
            statement = statement.where(Message.id < before)
        statement = statement.order_by(Message.id.desc()).limit(limit)
        return (await self.session.execute(statement)).scalars().all()

    async def messages_from(
        self, chat_id: uuid.UUID, *, first_id: uuid.UUID, limit: int
    ) -> Sequence[Message]:
        """Messages from `first_id` on, oldest first (replay after a reconnect), and earlier
        replies changed since `first_id` was written: with several replies streaming at once the
        subscriber's last event names the newest, and an older one may have ended (or been ended
        by a take-over after a crash) while it was away."""
        resumed_from = (
            select(Message.created_at)
            .where(Message.chat_id == chat_id, Message.id == first_id)
            .scalar_subquery()
        )
        # Not the earlier replies of the resume message's own send (stored with it, at the same
        # instant): a turn's replies run one after another, so those ended before it began and
        # the subscriber had them whole.
        changed_since = and_(
            Message.sender == Sender.AGENT.value,
            Message.updated_at >= resumed_from,
            Message.created_at != resumed_from,
        )
        statement = (
            select(Message)
            .where(
                Message.chat_id == chat_id,
                Message.id >= _written_before(first_id, _STREAMING_WINDOW_MS),
                or_(Message.id >= first_id, changed_since),
            )
            .order_by(Message.id)
            .limit(limit)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def in_flight_messages(self, chat_id: uuid.UUID) -> Sequence[Message]:
        """Replies of the chat still being generated, oldest first."""
        statement = (
            select(Message)
            .where(
                Message.chat_id == chat_id,
                Message.sender == Sender.AGENT.value,
                Message.status.in_(IN_FLIGHT),
            )
            .order_by(Message.id)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def messages_by_ids(
        self, chat_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> Sequence[Message]:
        """The given messages of the chat, oldest first."""
        statement = (
            select(Message)
            .where(Message.chat_id == chat_id, Message.id.in_(ids))
            .order_by(Message.id)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def get_message(
        self, message_id: uuid.UUID, *, tenant_id: uuid.UUID, user_id: uuid.UUID
    ) -> Message | None:
        """The message if it belongs to this user of this tenant."""
        statement = select(Message).where(
            Message.id == message_id, Message.tenant_id == tenant_id, Message.user_id == user_id
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_message_by_id(self, message_id: uuid.UUID) -> Message | None:
        """A message by id alone (for the generation task)."""
        return await self.session.get(Message, message_id)

    async def fail_stale(self, *, untouched_since: datetime, reason: str) -> int:
        """Mark replies nobody has advanced since then as failed, keeping their content."""
        result = await self.session.execute(
            update(Message)
            .where(
                Message.sender == Sender.AGENT.value,
                Message.status.in_(IN_FLIGHT),
                Message.updated_at < untouched_since,
            )
            .values(status=MessageStatus.FAILED.value, error=reason, updated_at=utcnow())
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def save_progress(
        self, message_id: uuid.UUID, *, content: str, status: MessageStatus
    ) -> bool:
        """Write partial content of a reply still in flight; False if it already finished."""
        parameters = {
            "message_id": message_id,
            "content": content,
            "status": status.value,
            "at": utcnow(),
        }
        result = await self.session.execute(_SAVE_PROGRESS, parameters)
        return bool(getattr(result, "rowcount", 0))

    async def finish(
        self,
        message_id: uuid.UUID,
        *,
        content: str,
        status: str,
        input_tokens: int,
        output_tokens: int,
        model: str | None,
        finish_reason: str | None,
        error: str | None,
        citations: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Write a reply's final state unless it already finished; False if it had."""
        parameters = {
            "message_id": message_id,
            "content": content,
            "status": status,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "model": model,
            "finish_reason": finish_reason,
            "error": error,
            "citations": citations,
            "at": utcnow(),
        }
        result = await self.session.execute(_FINISH, parameters)
        return bool(getattr(result, "rowcount", 0))
