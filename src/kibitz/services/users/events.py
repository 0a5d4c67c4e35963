"""What the users service consumes: registrations (profiles) and plan changes (its cache)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.contracts.events import PlanChanged, UserRegistered
from kibitz.kit.events import EventBus, EventEnvelope, Inbox, Subscription, TransactionalHandler
from kibitz.services.users.service import UsersService

GROUP = "users"


def registration_handler(users: UsersService) -> TransactionalHandler:
    """Makes the new user's profile; run through the inbox, so once per event."""

    async def on_user_registered(session: AsyncSession, envelope: EventEnvelope) -> None:
        await users.user_registered(session, event=UserRegistered.model_validate(envelope.payload))

    return on_user_registered


async def subscribe(bus: EventBus, *, inbox: Inbox, users: UsersService) -> list[Subscription]:
    """Profiles from registrations (one replica each); plan changes reach every replica's cache."""

    async def on_plan_changed(envelope: EventEnvelope) -> None:
        event = PlanChanged.model_validate(envelope.payload)
        users.subscriptions.plan_changed(
            tenant_id=event.tenant_id, plan=event.plan, limits=event.limits
        )

    return [
        await inbox.subscribe(
            bus, [UserRegistered.name], group=GROUP, handle=registration_handler(users)
        ),
        await bus.listen([PlanChanged.name], handler=on_plan_changed),
    ]
