"""OpenAI-compatible completions kept as chats (`store: true` on `/v1/chat/completions`).

The agents service serves those completions without chat; when a client asks to keep one, it
sends the exchange here over chat's internal route once the reply is whole, and the chat then
shows in the web app like any other. Why a call and not an event: the agents service has no bus
(all-in-one it runs in a process of its own), and the client, once its answer ends, expects to
find the chat (read-your-writes). Idempotent per completion: the turns' ids are chosen once by
the sender, so a retried call stores nothing twice.

The stored reply is not announced as `chat.message_completed`: its tokens were metered by the
agents service already.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
from fastapi import APIRouter, Request, status

from kibitz.contracts.chat import StoreCompletion, StoredCompletion, StoredTurn
from kibitz.kit.errors import problem_responses
from kibitz.kit.security import ServiceCaller
from kibitz.services.chat.errors import ChatNotFound
from kibitz.services.chat.models import Chat, Message, MessageStatus, Sender
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.sending.context import default_title
from kibitz.services.chat.service import ChatService
from kibitz.services.chat.tree.repository import TreeRepository

logger = structlog.get_logger("kibitz.chat.stored_completions")

internal = APIRouter(
    prefix="/chat/internal", tags=["chat (internal)"], dependencies=[ServiceCaller]
)


@internal.post(
    "/completions",
    response_model=StoredCompletion,
    status_code=status.HTTP_200_OK,
    responses=problem_responses(403, 404, 422),
)
async def store_completion(body: StoreCompletion, request: Request) -> StoredCompletion:
    """Keep a completion as a new chat, or at the end of one of the user's chats."""
    chats: ChatService = request.app.state.chat_service
    return await keep(chats, body)


async def keep(chats: ChatService, body: StoreCompletion) -> StoredCompletion:
    """Store the completion's turns (those not stored yet) in its chat, creating a new one."""
    now = datetime.now(UTC)
    async with chats.database.transaction() as session:
        repository = ChatRepository(session)
        chat = await repository.get_chat(
            body.chat_id, tenant_id=body.tenant_id, user_id=body.user_id
        )
        if chat is None:
            if not body.new_chat or await repository.get_chat_by_id(body.chat_id) is not None:
                raise ChatNotFound()
            first_words = next((t.content for t in body.turns if t.sender == "user"), "")
            chat = Chat(
                id=body.chat_id,
                tenant_id=body.tenant_id,
                user_id=body.user_id,
                agent_id=body.agent_id,
                agent_ids=[str(body.agent_id)],
                title=default_title(first_words),
                created_at=now,
                updated_at=now,
            )
            repository.add(chat)
            await session.flush()
        known = {
            message.id
            for message in await repository.messages_by_ids(
                chat.id, [turn.id for turn in body.turns]
            )
        }
        fresh = [turn for turn in body.turns if turn.id not in known]
        if fresh:
            # The completion's turns continue the chat's newest branch, one after the other.
            leaf = await TreeRepository(session).newest_leaf(chat.id)
            await repository.insert_messages(_messages(body, fresh, now, after=leaf))
            await repository.touch_chat(chat.id, now)
    logger.info(
        "completion_stored",
        chat_id=str(chat.id),
        completion_id=body.completion_id,
        turns=len(fresh),
    )
    return StoredCompletion(chat_id=chat.id, stored=len(fresh))


def _messages(
    body: StoreCompletion, turns: list[StoredTurn], now: datetime, *, after: uuid.UUID | None
) -> list[Message]:
    """The turns as finished messages, each the child of the turn before it (the first of the
    completion's, of `after`); the reply (the last turn) carries model and usage."""
    reply = body.turns[-1].id
    parents = dict(
        zip([turn.id for turn in body.turns], [after, *(t.id for t in body.turns)], strict=False)
    )
    return [
        Message(
            id=turn.id,
            parent_id=parents[turn.id],
            chat_id=body.chat_id,
            tenant_id=body.tenant_id,
            user_id=body.user_id,
            sender=Sender(turn.sender).value,
            agent_id=body.agent_id if turn.sender == Sender.AGENT.value else None,
            content=turn.content,
            status=MessageStatus.COMPLETE.value,
            input_tokens=body.input_tokens if turn.id == reply else 0,
            output_tokens=body.output_tokens if turn.id == reply else 0,
            model=body.model if turn.id == reply else None,
            finish_reason=body.finish_reason if turn.id == reply else None,
            created_at=now,
            updated_at=now,
        )
        for turn in turns
    ]
