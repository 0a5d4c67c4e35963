"""What API keys consume: a member's removal from a tenant revokes their keys there (and each
revocation is announced as `auth.api_key_revoked`, which every gateway replica hears)."""

from __future__ import annotations

from kibitz.contracts.events import MemberRemoved
from kibitz.kit.db import Database
from kibitz.kit.events import EventBus, EventEnvelope, Subscription
from kibitz.services.auth.api_keys.service import ApiKeyService

CONSUMES = (MemberRemoved.name,)
GROUP = "auth-api-keys"


async def subscribe(bus: EventBus, *, database: Database, api_keys: ApiKeyService) -> Subscription:
    """One replica of auth handles each removal. No inbox is needed: revoking keys that are
    already revoked changes nothing and announces nothing."""

    async def on_member_removed(envelope: EventEnvelope) -> None:
        event = MemberRemoved.model_validate(envelope.payload)
        async with database.transaction() as session:
            await api_keys.revoke_all_of_user(
                session, user_id=event.user_id, tenant_id=event.tenant_id
            )

    return await bus.subscribe(list(CONSUMES), group=GROUP, handler=on_member_removed)
