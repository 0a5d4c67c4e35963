"""What the tenants service publishes (`tenants.plan_changed`) and consumes (metering)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.contracts.events import MessageCompleted
from kibitz.kit.events import EventBus, EventEnvelope, Inbox, Subscription, TransactionalHandler
from kibitz.services.tenants.service import TenantsService

GROUP = "tenants"


def metering_handler(tenants: TenantsService) -> TransactionalHandler:
    """Counts a finished reply's tokens; run through the inbox, so once per event."""

    async def on_message_completed(session: AsyncSession, envelope: EventEnvelope) -> None:
        event = MessageCompleted.model_validate(envelope.payload)
        await tenants.record_message_completed(
            session, event=event, occurred_at=envelope.occurred_at
        )

    return on_message_completed


async def subscribe(bus: EventBus, *, inbox: Inbox, tenants: TenantsService) -> Subscription:
    """Meter tokens from every finished chat reply (exactly once per event, via the inbox)."""
    return await inbox.subscribe(
        bus, [MessageCompleted.name], group=GROUP, handle=metering_handler(tenants)
    )
