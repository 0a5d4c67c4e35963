"""Stopping a turn of several agents: stopping any of its replies stops the turn. The replies
that have not started end at once (`stopped`, no content, their message given back); the one
being generated is then stopped as a lone reply is, keeping what streamed."""

from __future__ import annotations

import uuid

from kibitz.kit.events import Outbox
from kibitz.kit.jwt import Principal
from kibitz.services.chat.replies.repository import ReplyJobRepository
from kibitz.services.chat.storage import ChatDatabase
from kibitz.services.chat.streams.fanout import Fanout
from kibitz.services.chat.turns.chain import publish_ended, stop_waiting
from kibitz.services.chat.turns.repository import TurnRepository


async def stop_turn(
    database: ChatDatabase,
    fanout: Fanout,
    outbox: Outbox,
    *,
    principal: Principal,
    message_id: uuid.UUID,
) -> uuid.UUID | None:
    """End the unstarted replies of the turn `message_id` belongs to; the reply of that turn
    being generated, to stop next (None: the message is in no turn of several agents)."""
    async with database.transaction() as session:
        # Serialised with the chain (turns/chain.py): no reply of the turn starts meanwhile.
        await ReplyJobRepository(session).lock_user(principal.user_id)
        order = await TurnRepository(session).turn_of(
            message_id, tenant_id=principal.tenant_id, user_id=principal.user_id
        )
        if order is None:
            return None
        ended = await stop_waiting(session, outbox, order)
    await publish_ended(fanout, ended)
    return order.message_id
