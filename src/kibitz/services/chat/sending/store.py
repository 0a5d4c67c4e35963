"""Storing a send: one write transaction checks the chat and the caller, counts their replies in
flight, stores the user's message and the pending reply, and enqueues the reply's job."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError

from kibitz.contracts.events import MessageCompleted
from kibitz.kit.events import Outbox
from kibitz.kit.jwt import Principal
from kibitz.services.chat.config import ChatSettings
from kibitz.services.chat.errors import ChatNotFound, MessageNotFound, TooManyGenerations
from kibitz.services.chat.models import Chat, Message, MessageStatus, Sender
from kibitz.services.chat.replies.orders import ReplyOrder, TurnStep
from kibitz.services.chat.replies.repository import ReplyJobRepository
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.schemas import ChatSend, MessageRead, SendResult
from kibitz.services.chat.sending.context import default_title, reply_context
from kibitz.services.chat.sending.quota import reservation_key
from kibitz.services.chat.sending.repository import IdempotencyRepository, SendReads, SendView
from kibitz.services.chat.storage import ChatDatabase
from kibitz.services.chat.tree.placement import NEWEST_LEAF, Placement
from kibitz.services.chat.turns.turn import PlannedTurn, checked_turn

logger = structlog.get_logger("kibitz.chat")


@dataclass(frozen=True)
class SendIds:
    """A send's new ids, time-ordered: the user's message, then the reply, then the later
    replies of a turn of several agents (and a new chat's)."""

    user_message: uuid.UUID
    reply: uuid.UUID
    chat: uuid.UUID
    later: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True)
class StoredSend:
    """What a stored send answers, and the reply it enqueued."""

    result: dict[str, Any]
    order: ReplyOrder


def too_many_generations(cap: int) -> TooManyGenerations:
    """429 `too-many-generations`."""
    return TooManyGenerations(
        f"At most {cap} replies can be generated at once; wait for one to finish.",
        retry_after=2,
        extra={"limit": "concurrent_generations"},
    )


async def checked_view(
    reads: SendReads,
    principal: Principal,
    body: ChatSend,
    *,
    now: datetime,
    settings: ChatSettings,
    placement: Placement,
) -> SendView:
    """The chat is the caller's (404 otherwise), so is the message it goes after (404), and the
    cap allows one more reply (429): its agent, title and the branch it continues, newest
    first."""
    since = now - timedelta(seconds=settings.stale_generation_seconds)
    if body.chat_id is None:
        in_flight = await reads.in_flight(user_id=principal.user_id, since=since)
        title = body.title or default_title(body.content)
        view = SendView(
            agent_id=body.participants[0],
            title=title,
            in_flight=in_flight,
            history=[],
            agent_ids=body.participants,
            mode=body.mode or "direct",
        )
    else:
        found = await reads.existing_chat(
            body.chat_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            since=since,
            placement=placement,
            limit=settings.context_messages - 1,
        )
        if found is None:
            raise ChatNotFound()
        if placement.parent_id is not None and found.parent_id != placement.parent_id:
            raise MessageNotFound()
        view = found
    if view.in_flight >= settings.max_concurrent_generations:
        raise too_many_generations(settings.max_concurrent_generations)
    return view


def delegates_of(view: SendView, *, max_depth: int) -> tuple[uuid.UUID, ...]:
    """Whom the reply may consult: in an orchestrated chat, every other participant (unless
    delegation is turned off: depth 0)."""
    if view.mode != "orchestrated" or max_depth < 1:
        return ()
    return tuple(agent_id for agent_id in view.agent_ids if agent_id != view.agent_id)


async def store_send(
    database: ChatDatabase,
    *,
    principal: Principal,
    body: ChatSend,
    ids: SendIds,
    now: datetime,
    settings: ChatSettings,
    idempotency_key: str | None,
    request_id: str | None,
    holder: str,
    reserve: Callable[[int], Awaitable[None]],
    checked: Callable[[ReplyOrder], None] | None = None,
    turn: PlannedTurn | None = None,
    placement: Placement = NEWEST_LEAF,
) -> StoredSend:
    """Check, then reserve quota (a message per reply) while storing, in one transaction
    committed only once the reservation is granted (`checked` hears of the first reply as soon
    as the send is checked). The caller's lock on their own replies is held from the count to
    the commit, so the cap holds under any burst, across replicas. A chat whose turn needs
    planning raises TurnToPlan before anything is written (`turns/turn.py`)."""
    reservation: asyncio.Future[None] | None = None
    try:
        async with database.transaction() as session:
            await ReplyJobRepository(session).lock_user(principal.user_id)
            reads = SendReads(await session.connection())
            view = await checked_view(
                reads, principal, body, now=now, settings=settings, placement=placement
            )
            turn = checked_turn(view.agent_ids, view.mode, body.content, turn)
            answering = turn.answering if turn is not None else ((view.agent_id, ""),)
            # Checked: quota is only counted for a send that may go ahead; its round trip runs
            # while the rows are written.
            reservation = asyncio.ensure_future(reserve(len(answering)))
            (agent_id, name), later = answering[0], answering[1:]
            order = ReplyOrder(
                message_id=ids.reply,
                user_message_id=ids.user_message,
                chat_id=body.chat_id or ids.chat,
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
                agent_id=agent_id,
                parent_id=ids.user_message,
                context=reply_context(view.history, body.content, max_chars=settings.context_chars),
                request_id=request_id,
                created_at=now,
                delegates=delegates_of(view, max_depth=settings.max_delegation_depth),
                name=name,
                rest=tuple(
                    TurnStep(message_id=message_id, agent_id=agent, name=agent_name)
                    for message_id, (agent, agent_name) in zip(ids.later, later, strict=False)
                ),
            )
            if checked is not None:
                checked(order)
            result = await _insert(session, principal, body, view, order, now)
            await ReplyJobRepository(session).add(
                message_id=ids.reply,
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
    except IntegrityError as exc:
        raise ChatNotFound() from exc  # deleted meanwhile
    finally:
        if reservation is not None and not reservation.done():
            reservation.cancel()
    return StoredSend(result=result, order=order)


async def _insert(
    session: Any,
    principal: Principal,
    body: ChatSend,
    view: SendView,
    order: ReplyOrder,
    now: datetime,
) -> dict[str, Any]:
    """The new chat (if any), the user's message and the pending reply; the send's answer."""
    chats = ChatRepository(session)
    if body.chat_id is None:
        chats.add(
            Chat(
                id=order.chat_id,
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
                agent_id=view.agent_id,
                agent_ids=[str(agent_id) for agent_id in body.participants],
                mode=body.mode or "direct",
                title=view.title,
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()  # the new chat first: the messages refer to it
    else:
        await chats.touch_chat(order.chat_id, now, title=body.title)
    common = {
        "chat_id": order.chat_id,
        "tenant_id": principal.tenant_id,
        "user_id": principal.user_id,
        "input_tokens": 0,
        "output_tokens": 0,
        "created_at": now,
        "updated_at": now,
    }
    user_message = Message(
        id=order.user_message_id,
        parent_id=view.parent_id,
        sender=Sender.USER.value,
        content=body.content,
        status=MessageStatus.COMPLETE.value,
        **common,
    )
    # Within a turn each reply follows the one before it: user message, first reply, second…
    answering = [
        (order.message_id, order.agent_id),
        *((step.message_id, step.agent_id) for step in order.rest),
    ]
    parents = [order.user_message_id, *(message_id for message_id, _ in answering[:-1])]
    replies = [
        Message(
            id=message_id,
            parent_id=parent_id,
            sender=Sender.AGENT.value,
            agent_id=agent_id,
            content="",
            status=MessageStatus.PENDING.value,
            **common,
        )
        for (message_id, agent_id), parent_id in zip(answering, parents, strict=True)
    ]
    await chats.insert_messages([user_message, *replies])
    shown = [MessageRead.model_validate(reply) for reply in replies]
    return SendResult(
        chat_id=order.chat_id,
        user_message=MessageRead.model_validate(user_message),
        agent_message=shown[0],
        agent_messages=shown,
    ).model_dump(mode="json")


async def give_back_unstored(
    database: ChatDatabase,
    outbox: Outbox,
    *,
    principal: Principal,
    chat_id: uuid.UUID,
    ids: SendIds,
) -> None:
    """Give back what a send reserved when its store failed after the grant (nothing was
    stored, so no reply will): through the event that gives back a failed reply's message,
    naming the reply that never was. Logged, never raised: the send's own error is the answer."""
    try:
        async with database.transaction() as session:
            await outbox.add(
                session,
                MessageCompleted(
                    message_id=ids.reply,
                    chat_id=chat_id,
                    tenant_id=principal.tenant_id,
                    user_id=principal.user_id,
                    status=MessageStatus.FAILED.value,
                    refunded_reservation=reservation_key(ids.user_message),
                ),
            )
    except Exception:
        logger.warning("chat_reservation_not_given_back", message_id=str(ids.reply), exc_info=True)
