"""Chaining a turn's replies: when one ends, the next starts, one after another in order.

A turn of several agents stores all its replies with the send (`pending`), but only the first
gets a job. When a reply ends (complete or failed), the transaction that stores its ending also
takes the next waiting reply and adds its job, with the answer just given in its context: the
turn's state is in the database, never only in a process, so a crash anywhere leaves either
the ended reply's job or the next one's, and the sweep carries on from it. A stopped reply
ends its turn: the replies that did not start end `stopped`, with no content, and give their
message back to the quota (they cost nothing).

Only one reply of a turn is in flight at a time (one `reply_jobs` row), so the per-user cap
counts a turn as one generation."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.contracts.events import MessageCompleted
from kibitz.kit.events import Outbox
from kibitz.services.chat.models import Message, MessageStatus
from kibitz.services.chat.replies.orders import ReplyOrder
from kibitz.services.chat.replies.repository import ReplyJobRepository
from kibitz.services.chat.schemas import MessageRead
from kibitz.services.chat.sending.quota import reservation_key
from kibitz.services.chat.streams.cursor import terminal_event_name
from kibitz.services.chat.streams.fanout import Fanout
from kibitz.services.chat.turns.context import with_answer
from kibitz.services.chat.turns.repository import TurnRepository

# Queues a reply job whose row is leased to the given holder (ReplyJobs.enqueue).
Enqueue = Callable[[ReplyOrder, str], Awaitable[None]]


@dataclass
class TurnNext:
    """What ending a reply of a turn led to: the next reply (its job added, leased to
    `holder`), and the replies it ended unstarted (their terminal events are still to send)."""

    order: ReplyOrder | None = None
    holder: str = ""
    ended: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TurnChain:
    """Starts the next reply of a turn when one ends; `enqueue` is the work queue's."""

    lease_seconds: float
    new_holder: Callable[[], str]
    enqueue: Enqueue | None = None

    async def step(
        self,
        session: AsyncSession,
        outbox: Outbox,
        order: ReplyOrder,
        *,
        status: MessageStatus,
        content: str,
    ) -> TurnNext:
        """In the transaction that stored `order`'s ending: start the next waiting reply, or
        end them all when the turn was stopped."""
        jobs = ReplyJobRepository(session)
        # Serialised with stop requests (turns/stopping.py) and the user's sends.
        await jobs.lock_user(order.user_id)
        if status is not MessageStatus.STOPPED:
            turns = TurnRepository(session)
            context = with_answer(order.context, order.name, content)
            for index, step in enumerate(order.rest):
                if not await turns.start_waiting(step.message_id):
                    continue  # stopped meanwhile
                following = dataclasses.replace(
                    order,
                    message_id=step.message_id,
                    # Stored after the reply before it in the turn (sending/store.py).
                    parent_id=order.rest[index - 1].message_id if index else order.message_id,
                    agent_id=step.agent_id,
                    name=step.name,
                    context=context,
                    rest=order.rest[index + 1 :],
                )
                await turns.still_waiting([later.message_id for later in following.rest])
                holder = self.new_holder()
                await jobs.add(
                    message_id=step.message_id,
                    tenant_id=order.tenant_id,
                    user_id=order.user_id,
                    payload=following.to_payload(),
                    holder=holder,
                    lease_seconds=self.lease_seconds,
                )
                return TurnNext(order=following, holder=holder)
        ended = await stop_waiting(session, outbox, order)
        return TurnNext(ended=ended)

    async def after_commit(self, fanout: Fanout, following: TurnNext) -> None:
        """Tell subscribers of the replies ended unstarted, then queue the next reply (a
        failure loses nothing: the sweep queues its job once its lease lapses)."""
        await publish_ended(fanout, following.ended)
        if following.order is not None and self.enqueue is not None:
            with contextlib.suppress(Exception):
                await self.enqueue(following.order, following.holder)


async def stop_waiting(
    session: AsyncSession, outbox: Outbox, order: ReplyOrder
) -> list[dict[str, Any]]:
    """End the turn's replies after `order` that did not start: `stopped`, no content, their
    message given back (outbox, same transaction); the ended messages as the API shows them."""
    ids = [step.message_id for step in order.rest]
    ended: Sequence[Message] = await TurnRepository(session).stop_waiting(ids)
    for message in ended:
        await outbox.add(
            session,
            MessageCompleted(
                message_id=message.id,
                chat_id=order.chat_id,
                tenant_id=order.tenant_id,
                user_id=order.user_id,
                agent_id=message.agent_id,
                status=MessageStatus.STOPPED.value,
                refunded_reservation=reservation_key(order.user_message_id),
                refunded_amount=1,
            ),
        )
    return [MessageRead.model_validate(message).model_dump(mode="json") for message in ended]


async def publish_ended(fanout: Fanout, ended: list[dict[str, Any]]) -> None:
    """The terminal events of replies ended unstarted."""
    for message in ended:
        event = {"type": terminal_event_name(message["status"]), "message": message}
        with contextlib.suppress(Exception):
            await fanout.publish(str(message["chat_id"]), event)
