"""What the tenants service publishes (`tenants.plan_changed`, `tenants.member_removed`) and
consumes (metering, the plan a Stripe subscription pays for, and deleted accounts)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.contracts.events import AccountDeleted, MessageCompleted, SubscriptionChanged
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


def account_deleted_handler(tenants: TenantsService) -> TransactionalHandler:
    """A deleted account's membership goes; run through the inbox, so once per event."""

    async def on_account_deleted(session: AsyncSession, envelope: EventEnvelope) -> None:
        event = AccountDeleted.model_validate(envelope.payload)
        await tenants.departures.forget(session, user_id=event.user_id)

    return on_account_deleted


async def subscribe(bus: EventBus, *, inbox: Inbox, tenants: TenantsService) -> Subscription:
    """Metering, billing's plan changes and deleted accounts, each once per event (inbox)."""
    handlers = {
        MessageCompleted.name: metering_handler(tenants),
        SubscriptionChanged.name: subscription_handler(tenants),
        AccountDeleted.name: account_deleted_handler(tenants),
    }

    async def handle(session: AsyncSession, envelope: EventEnvelope) -> None:
        await handlers[envelope.name](session, envelope)

    return await inbox.subscribe(bus, list(handlers), group=GROUP, handle=handle)
