"""Request dependencies: the session, the chat service, and lookups that 404 when not yours."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.security import CurrentPrincipal
from kibitz.services.chat.errors import ChatNotFound
from kibitz.services.chat.models import Chat
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.service import ChatService
from kibitz.services.chat.storage import ChatDatabase


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    database: ChatDatabase = request.app.state.database
    async for session in database.session_for_request():
        yield session


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: ChatDatabase = request.app.state.database
    async for session in database.read_session_for_request():
        yield session


# Commits when the handler returns, before the answer is sent (read-your-writes).
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
# For routes that only read: never waits for writers.
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]


async def chat_service(request: Request) -> ChatService:
    """The service (one per process)."""
    service: ChatService = request.app.state.chat_service
    return service


ChatServiceDep = Annotated[ChatService, Depends(chat_service)]


async def _owned_chat(chat_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep) -> Chat:
    chat = await ChatRepository(session).get_chat(
        chat_id, tenant_id=principal.tenant_id, user_id=principal.user_id
    )
    if chat is None:
        raise ChatNotFound()
    return chat


OwnedChat = Annotated[Chat, Depends(_owned_chat)]


async def _owned_chat_to_read(
    chat_id: uuid.UUID, principal: CurrentPrincipal, session: ReadSessionDep
) -> Chat:
    chat = await ChatRepository(session).get_chat(
        chat_id, tenant_id=principal.tenant_id, user_id=principal.user_id
    )
    if chat is None:
        raise ChatNotFound()
    return chat


# The same lookup, in the request's read-only session.
OwnedChatToRead = Annotated[Chat, Depends(_owned_chat_to_read)]


async def owned_chat_id(
    database: ChatDatabase, chat_id: uuid.UUID, *, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> uuid.UUID:
    """The chat's id if the user owns it (404 otherwise), in a transaction of its own.

    Streams use this instead of a request session, which would stay open as long as the stream.
    """
    async with database.reading() as session:
        chat = await ChatRepository(session).get_chat(chat_id, tenant_id=tenant_id, user_id=user_id)
    if chat is None:
        raise ChatNotFound()
    return chat.id
