"""A user's chats: the list and deleting."""

from __future__ import annotations

import base64
import contextlib
import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.errors import Unprocessable
from kibitz.kit.jwt import Principal
from kibitz.services.chat.models import Chat
from kibitz.services.chat.replies.generate import ReplyGenerator
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.schemas import ChatRead
from kibitz.services.chat.streams.cursor import DELETED
from kibitz.services.chat.streams.fanout import Fanout

logger = structlog.get_logger("kibitz.chat")


def encode_chat_cursor(chat: Chat) -> str:
    """An opaque cursor after this chat in the newest-first list."""
    raw = f"{chat.updated_at.isoformat()}|{chat.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_chat_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Read a chats cursor (422 when it is not one of ours)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, _, chat_id = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
        return datetime.fromisoformat(stamp), uuid.UUID(chat_id)
    except ValueError as exc:
        raise Unprocessable("The cursor is not valid.") from exc


async def list_chats(
    session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None
) -> dict[str, Any]:
    """The user's chats, most recently active first."""
    after = decode_chat_cursor(cursor) if cursor else None
    rows = await ChatRepository(session).list_chats(
        tenant_id=principal.tenant_id, user_id=principal.user_id, limit=limit + 1, after=after
    )
    page = list(rows[:limit])
    next_cursor = encode_chat_cursor(page[-1]) if len(rows) > limit else None
    items = [ChatRead.model_validate(chat).model_dump(mode="json") for chat in page]
    return {"items": items, "next_cursor": next_cursor}


async def delete_chat(
    session: AsyncSession, *, chat: Chat, fanout: Fanout, generator: ReplyGenerator
) -> None:
    """Delete the chat and its messages; replies in flight are stopped."""
    chats = ChatRepository(session)
    for message in await chats.in_flight_messages(chat.id):
        await generator.on_stop_requested(str(message.id))
        with contextlib.suppress(Exception):
            await fanout.request_stop(str(message.id))
    await chats.delete_chat(chat)
    await session.flush()
    try:
        await fanout.publish(str(chat.id), {"type": DELETED})
    except Exception:  # the streams still end at the subscriber's next reconnect (404)
        logger.warning("chat_deleted_publish_failed", chat_id=str(chat.id))
