"""What the tenants service publishes (`tenants.plan_changed`) and consumes (metering, and the
plan a Stripe subscription pays for)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.contracts.events import MessageCompleted, SubscriptionChanged
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


def subscription_handler(tenants: TenantsService) -> TransactionalHandler:
    """Applies the plan billing says a tenant pays for; run through the inbox, so once per event."""

    async def on_subscription_changed(session: AsyncSession, envelope: EventEnvelope) -> None:
        event = SubscriptionChanged.model_validate(envelope.payload)
        await tenants.apply_subscription_change(session, event=event)

    return on_subscription_changed


async def subscribe(bus: EventBus, *, inbox: Inbox, tenants: TenantsService) -> Subscription:
    """Metering and billing's plan changes, each exactly once per event (via the inbox)."""
    handlers = {
        MessageCompleted.name: metering_handler(tenants),
        SubscriptionChanged.name: subscription_handler(tenants),
    }

    async def handle(session: AsyncSession, envelope: EventEnvelope) -> None:
        await handlers[envelope.name](session, envelope)

    return await inbox.subscribe(bus, list(handlers), group=GROUP, handle=handle)
