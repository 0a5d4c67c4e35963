"""What the agents service consumes: a deleted account's agents go. It publishes nothing, so
all-in-one may run it apart (its parent relays these events to it)."""

from __future__ import annotations

import structlog

from kibitz.contracts.events import AccountDeleted
from kibitz.kit.events import EventBus, EventEnvelope, Subscription
from kibitz.services.agents import service
from kibitz.services.agents.service import AgentsRuntime

logger = structlog.get_logger("kibitz.agents")

CONSUMES = (AccountDeleted.name,)
GROUP = "agents-accounts"


async def subscribe(bus: EventBus, *, runtime: AgentsRuntime) -> Subscription:
    """One replica of agents erases each deleted account's agents. No inbox is needed: deleting
    what is already deleted changes nothing."""

    async def on_account_deleted(envelope: EventEnvelope) -> None:
        event = AccountDeleted.model_validate(envelope.payload)
        async with runtime.database.transaction() as session:
            agents = await service.erase_account(
                session, runtime=runtime, tenant_id=event.tenant_id, user_id=event.user_id
            )
        logger.info("agents_of_deleted_account_erased", user_id=str(event.user_id), agents=agents)

    return await bus.subscribe(list(CONSUMES), group=GROUP, handler=on_account_deleted)
