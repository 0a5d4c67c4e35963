"""Regenerating a reply and editing a message: new branches of the chat's tree, made with the
send's own steps (Idempotency-Key, the chat and caller checks, the quota reservation while the
rows are written, the reply job, the announcement and the stream).

An edit is a send placed beside the edited message (same parent). A regeneration stores no user
message: only a new reply beside the old one, answering the same branch; it counts one message
against the quota like a send (reserved under the new reply's id)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from kibitz.kit.errors import Conflict, Unprocessable
from kibitz.kit.ids import new_id
from kibitz.kit.jwt import Principal
from kibitz.services.chat.errors import ChatNotFound, MessageNotFound
from kibitz.services.chat.models import Chat, Message, MessageStatus, Sender, utcnow
from kibitz.services.chat.replies.orders import ReplyOrder, new_holder
from kibitz.services.chat.replies.repository import ReplyJobRepository
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.schemas import (
    ChatSend,
    MessageEdit,
    MessageRead,
    Regeneration,
    ReplyResult,
)
from kibitz.services.chat.sending.context import reply_context
from kibitz.services.chat.sending.idempotency import checked_key, claim_key, released_on_failure
from kibitz.services.chat.sending.repository import IdempotencyRepository, RecentMessage, SendReads
from kibitz.services.chat.sending.store import StoredSend, too_many_generations
from kibitz.services.chat.service import ChatService, SendOutcome, announce, send
from kibitz.services.chat.streams.cursor import Batch
from kibitz.services.chat.streams.follow import follow_send, replay_send
from kibitz.services.chat.tree.placement import Placement
from kibitz.services.chat.turns.context import with_answer


@dataclass(frozen=True)
class _Target:
    """The message regenerated or edited, and its chat."""

    message: Message
    chat: Chat


async def _owned(chat: ChatService, principal: Principal, message_id: uuid.UUID) -> _Target:
    """The caller's message and its chat (404 otherwise)."""
    async with chat.database.reading() as session:
        chats = ChatRepository(session)
        message = await chats.get_message(
            message_id, tenant_id=principal.tenant_id, user_id=principal.user_id
        )
        found = (
            await chats.get_chat(
                message.chat_id, tenant_id=principal.tenant_id, user_id=principal.user_id
            )
            if message is not None
            else None
        )
    if message is None or found is None:
        raise MessageNotFound()
    return _Target(message=message, chat=found)


async def edit(
    chat: ChatService,
    *,
    principal: Principal,
    message_id: uuid.UUID,
    body: MessageEdit,
    access_token: str,
    idempotency_key: str | None,
    request_id: str | None = None,
    stream: bool = False,
) -> SendOutcome:
    """A new user message beside one of the user's (same parent), answered as a send is."""
    target = await _owned(chat, principal, message_id)
    if target.message.sender != Sender.USER.value:
        raise Conflict("Only a message of yours can be edited; regenerate a reply instead.")
    return await send(
        chat,
        principal=principal,
        body=ChatSend(content=body.content, chat_id=target.chat.id),
        access_token=access_token,
        idempotency_key=idempotency_key,
        request_id=request_id,
        stream=stream,
        placement=Placement.under(target.message.parent_id),
        request_kind=f"edit:{message_id}",
    )


async def regenerate(
    chat: ChatService,
    *,
    principal: Principal,
    message_id: uuid.UUID,
    body: Regeneration,
    idempotency_key: str | None,
    request_id: str | None = None,
    stream: bool = False,
) -> SendOutcome:
    """A new reply beside an agent's (same parent), by the same agent or another participant."""
    settings, heartbeat = chat.settings, chat.settings.heartbeat_seconds
    key = checked_key(idempotency_key)
    earlier = (
        await claim_key(
            chat.database,
            user_id=principal.user_id,
            key=key,
            body=body,
            ttl_seconds=settings.idempotency_ttl_seconds,
            kind=f"regenerate:{message_id}",
        )
        if key is not None
        else None
    )
    if earlier is not None:
        replay = replay_send(chat.database, chat.fanout, earlier, heartbeat_seconds=heartbeat)
        return SendOutcome(result=earlier, replayed=True, frames=replay if stream else None)
    async with released_on_failure(chat.database, user_id=principal.user_id, key=key):
        target = await _owned(chat, principal, message_id)
        old = target.message
        if old.sender != Sender.AGENT.value or old.delegated or old.parent_id is None:
            raise Conflict("Only a reply of the conversation can be regenerated.")
        agent_id = body.agent_id or old.agent_id or target.chat.agent_id
        if str(agent_id) not in target.chat.agent_ids and agent_id != target.chat.agent_id:
            raise Unprocessable("agent_id is not a participant of this chat.")
        holder = new_holder()
        stored = await _store_reply(
            chat,
            principal=principal,
            chat_id=target.chat.id,
            parent_id=old.parent_id,
            agent_id=agent_id,
            request_id=request_id,
            idempotency_key=key,
            holder=holder,
        )
    frames: AsyncIterator[Batch | None] | None = None
    if stream:  # subscribed before the reply is announced: the stream misses nothing
        frames = follow_send(chat.fanout, stored.result, heartbeat_seconds=heartbeat)
    await announce(chat, stored, holder=holder, early=None)
    return SendOutcome(result=stored.result, frames=frames)


def branch_context(history: list[RecentMessage], *, max_chars: int) -> list[dict[str, str]]:
    """What a reply to the branch's last message (`history[0]`, newest first) is asked from: a
    reply after replies of the same turn sees them folded into the user's message, as the turn
    asked it (`turns/context.py`)."""
    answers: list[RecentMessage] = []
    rest = list(history)
    while rest and rest[0].sender != Sender.USER.value:
        answers.append(rest.pop(0))
    if not rest:  # no user message on the branch within reach: the answers as they stand
        return [{"role": "user", "content": answer.content} for answer in reversed(answers)]
    context = reply_context(rest[1:], rest[0].content, max_chars=max_chars)
    for answer in reversed(answers):
        context = with_answer(context, "", answer.content)
    return context


async def _store_reply(
    chat: ChatService,
    *,
    principal: Principal,
    chat_id: uuid.UUID,
    parent_id: uuid.UUID,
    agent_id: uuid.UUID,
    request_id: str | None,
    idempotency_key: str | None,
    holder: str,
) -> StoredSend:
    """One transaction, as a send's: the caller's lock on their replies, the cap, the quota
    reserved while the reply and its job are written, the key's answer."""
    settings, now, reply_id = chat.settings, utcnow(), new_id()
    reservation: asyncio.Future[None] | None = None
    try:
        async with chat.database.transaction() as session:
            await ReplyJobRepository(session).lock_user(principal.user_id)
            view = await SendReads(await session.connection()).existing_chat(
                chat_id,
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
                since=now - timedelta(seconds=settings.stale_generation_seconds),
                placement=Placement(parent_id=parent_id),
                limit=settings.context_messages,
            )
            if view is None:
                raise ChatNotFound()
            if view.parent_id != parent_id:
                raise MessageNotFound()
            if view.in_flight >= settings.max_concurrent_generations:
                raise too_many_generations(settings.max_concurrent_generations)
            # The new reply's id is its reservation's key: a refund after an early failure
            # names it as a send's names its user message.
            reservation = asyncio.ensure_future(
                chat.quota.reserve(principal.tenant_id, user_message_id=reply_id)
            )
            order = ReplyOrder(
                message_id=reply_id,
                user_message_id=reply_id,
                chat_id=chat_id,
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
                agent_id=agent_id,
                parent_id=parent_id,
                context=branch_context(view.history, max_chars=settings.context_chars),
                request_id=request_id,
                created_at=now,
            )
            reply = Message(
                id=reply_id,
                parent_id=parent_id,
                chat_id=chat_id,
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
                sender=Sender.AGENT.value,
                agent_id=agent_id,
                content="",
                status=MessageStatus.PENDING.value,
                input_tokens=0,
                output_tokens=0,
                created_at=now,
                updated_at=now,
            )
            chats = ChatRepository(session)
            await chats.touch_chat(chat_id, now)
            await chats.insert_messages([reply])
            agent_message = MessageRead.model_validate(reply)
            result: dict[str, Any] = ReplyResult(
                chat_id=chat_id, agent_message=agent_message, agent_messages=[agent_message]
            ).model_dump(mode="json")
            await ReplyJobRepository(session).add(
                message_id=reply_id,
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
                payload=order.to_payload(),
                holder=holder,
                lease_seconds=settings.reply_lease_seconds,
            )
            if idempotency_key is not None:
                await IdempotencyRepository(session).record(
                    user_id=principal.user_id, key=idempotency_key, response=result
                )
            await reservation  # a refusal rolls everything back
    finally:
        if reservation is not None and not reservation.done():
            reservation.cancel()
    return StoredSend(result=result, order=order)
