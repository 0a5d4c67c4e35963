"""What the users service consumes: registrations (profiles), deleted accounts (profiles go)
and plan changes (its cache)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.contracts.events import AccountDeleted, PlanChanged, UserRegistered
from kibitz.kit.events import EventBus, EventEnvelope, Inbox, Subscription, TransactionalHandler
from kibitz.services.users.service import UsersService

GROUP = "users"


def registration_handler(users: UsersService) -> TransactionalHandler:
    """Makes the new user's profile; run through the inbox, so once per event."""

    async def on_user_registered(session: AsyncSession, envelope: EventEnvelope) -> None:
        await users.user_registered(session, event=UserRegistered.model_validate(envelope.payload))

    return on_user_registered


def account_deleted_handler(users: UsersService) -> TransactionalHandler:
    """Deletes a deleted account's profile; run through the inbox, so once per event."""

    async def on_account_deleted(session: AsyncSession, envelope: EventEnvelope) -> None:
        await users.account_deleted(session, event=AccountDeleted.model_validate(envelope.payload))

    return on_account_deleted


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
        await inbox.subscribe(
            bus,
            [AccountDeleted.name],
            group=f"{GROUP}-deletions",
            handle=account_deleted_handler(users),
        ),
        await bus.listen([PlanChanged.name], handler=on_plan_changed),
    ]
