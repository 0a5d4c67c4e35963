"""What chat publishes (`chat.message_completed`, carrying token usage for metering) and consumes
(`auth.account_deleted`: the person's chats and messages are deleted)."""

from __future__ import annotations

import structlog

from kibitz.contracts.events import AccountDeleted, MessageCompleted
from kibitz.kit.db import Database
from kibitz.kit.events import EventBus, EventEnvelope, Subscription
from kibitz.services.chat.repository import ChatRepository

logger = structlog.get_logger("kibitz.chat")

PUBLISHED = (MessageCompleted,)
CONSUMES = (AccountDeleted.name,)
GROUP = "chat-accounts"


async def subscribe(bus: EventBus, *, database: Database) -> Subscription:
    """One replica of chat erases each deleted account's chats. No inbox is needed: deleting
    what is already deleted changes nothing."""

    async def on_account_deleted(envelope: EventEnvelope) -> None:
        event = AccountDeleted.model_validate(envelope.payload)
        async with database.transaction() as session:
            chats = await ChatRepository(session).delete_all_of_user(event.user_id)
        logger.info("chats_of_deleted_account_erased", user_id=str(event.user_id), chats=chats)

    return await bus.subscribe(list(CONSUMES), group=GROUP, handler=on_account_deleted)
