"""What the knowledge service consumes: a deleted account's private collections go. It publishes
nothing, so all-in-one may run it apart (its parent relays these events to it)."""

from __future__ import annotations

import structlog

from kibitz.contracts.events import AccountDeleted
from kibitz.kit.events import EventBus, EventEnvelope, Subscription
from kibitz.services.knowledge import service
from kibitz.services.knowledge.service import KnowledgeRuntime

logger = structlog.get_logger("kibitz.knowledge")

CONSUMES = (AccountDeleted.name,)
GROUP = "knowledge-accounts"


async def subscribe(bus: EventBus, *, runtime: KnowledgeRuntime) -> Subscription:
    """One replica of knowledge erases each deleted account's private collections. No inbox is
    needed: deleting what is already deleted changes nothing."""

    async def on_account_deleted(envelope: EventEnvelope) -> None:
        event = AccountDeleted.model_validate(envelope.payload)
        async with runtime.database.transaction() as session:
            collections = await service.erase_account(
                session, runtime=runtime, tenant_id=event.tenant_id, user_id=event.user_id
            )
        logger.info(
            "knowledge_of_deleted_account_erased",
            user_id=str(event.user_id),
            collections=collections,
        )

    return await bus.subscribe(list(CONSUMES), group=GROUP, handler=on_account_deleted)
