"""What ending accounts consumes: a member removed from their tenant loses the account (a user
belongs to one tenant), at once on every replica: sessions and API keys revoked, credentials
deleted, `auth.account_deleted` published for the other services to erase their data."""

from __future__ import annotations

from kibitz.contracts.events import MemberRemoved
from kibitz.kit.db import Database
from kibitz.kit.events import EventBus, EventEnvelope, Subscription
from kibitz.services.auth.accounts.service import AccountService

CONSUMES = (MemberRemoved.name,)
GROUP = "auth-accounts"


async def subscribe(bus: EventBus, *, database: Database, accounts: AccountService) -> Subscription:
    """One replica of auth handles each removal. No inbox is needed: an account already ended
    is not found again, so a redelivery changes and announces nothing."""

    async def on_member_removed(envelope: EventEnvelope) -> None:
        event = MemberRemoved.model_validate(envelope.payload)
        async with database.transaction() as session:
            await accounts.end(
                session, user_id=event.user_id, tenant_id=event.tenant_id, reason="removed"
            )

    return await bus.subscribe(list(CONSUMES), group=GROUP, handler=on_member_removed)
