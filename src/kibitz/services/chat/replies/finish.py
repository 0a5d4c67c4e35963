"""A reply's ending, whatever it is (complete, stopped, failed, recovered after a crash): its
final state stored, its job gone, its tokens metered, its subscribers told."""

from __future__ import annotations

import contextlib
from typing import Any

import structlog

from kibitz.contracts.events import MessageCompleted
from kibitz.kit.events import Outbox
from kibitz.services.chat.models import MessageStatus, Sender, utcnow
from kibitz.services.chat.replies.agent_stream import ReplyProgress
from kibitz.services.chat.replies.orders import ReplyOrder
from kibitz.services.chat.replies.repository import ReplyJobRepository
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.schemas import MessageRead
from kibitz.services.chat.sending.quota import reservation_key
from kibitz.services.chat.storage import ChatDatabase
from kibitz.services.chat.streams.cursor import terminal_event_name
from kibitz.services.chat.streams.fanout import Fanout
from kibitz.services.chat.turns.chain import TurnChain, TurnNext

logger = structlog.get_logger("kibitz.chat")


async def finish_reply(
    *,
    database: ChatDatabase,
    outbox: Outbox,
    fanout: Fanout,
    order: ReplyOrder,
    progress: ReplyProgress,
    status: MessageStatus,
    error: str | None,
    turns: TurnChain | None = None,
) -> bool:
    """Store the final state and meter it (outbox, same transaction), then publish the terminal
    event; False when the reply had already finished (someone else ended it). A reply of a
    turn of several agents starts the next one in the same transaction (`turns`)."""
    input_tokens, output_tokens = progress.usage(order.context)
    values: dict[str, Any] = {
        "content": progress.content,
        "status": status.value,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "model": progress.model,
        "finish_reason": progress.finish_reason,
        "error": error,
        "citations": progress.citations,
    }
    # A reply that failed before its first token gives its message back; a stopped one does
    # not (the user chose to end it).
    refund = status is MessageStatus.FAILED and not progress.streamed
    following = TurnNext()
    try:
        async with database.transaction() as session:
            finished = await ChatRepository(session).finish(order.message_id, **values)
            await ReplyJobRepository(session).remove(order.message_id)
            if finished:
                await outbox.add(
                    session,
                    MessageCompleted(
                        message_id=order.message_id,
                        chat_id=order.chat_id,
                        tenant_id=order.tenant_id,
                        user_id=order.user_id,
                        agent_id=order.agent_id,
                        status=status.value,
                        input_tokens=input_tokens,
                        output_tokens=output_tokens,
                        refunded_reservation=reservation_key(order.user_message_id)
                        if refund
                        else None,
                        # A turn reserved one message per reply under the send's key.
                        refunded_amount=1 if refund else None,
                    ),
                )
                if order.rest and turns is not None:
                    following = await turns.step(
                        session, outbox, order, status=status, content=progress.content
                    )
    except Exception:
        logger.exception("chat_reply_store_failed", message_id=str(order.message_id))
        return False
    if finished:
        final = MessageRead.model_validate(
            {
                **values,
                "id": order.message_id,
                "chat_id": order.chat_id,
                "sender": Sender.AGENT.value,
                "agent_id": order.agent_id,
                "parent_id": order.parent_id,
                "delegated": order.delegated,
                "created_at": order.created_at,
                "updated_at": utcnow(),
            }
        ).model_dump(mode="json")
        event: dict[str, Any] = {"type": terminal_event_name(status.value), "message": final}
        with contextlib.suppress(Exception):
            await fanout.publish(str(order.chat_id), event)
    with contextlib.suppress(Exception):
        await fanout.forget(str(order.chat_id), str(order.message_id))
    if turns is not None:
        await turns.after_commit(fanout, following)
    return finished


def ended_after_crash(order: ReplyOrder, stored: str, snapshot: str | None) -> ReplyProgress:
    """What a reply whose generator died had streamed: the longer of the stored content and the
    fan-out's snapshot (the snapshot runs ahead of the database by at most one persist
    interval)."""
    progress = ReplyProgress()
    progress.append(snapshot if snapshot and len(snapshot) > len(stored) else stored)
    return progress
