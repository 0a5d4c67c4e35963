"""What the auth service publishes (through its outbox). It consumes `tenants.member_removed`
(accounts/events.py): the removed member's account ends."""

from __future__ import annotations

from kibitz.contracts.events import AccountDeleted, ApiKeyRevoked, UserRegistered
from kibitz.services.auth.models import User

PUBLISHES = (UserRegistered.name, ApiKeyRevoked.name, AccountDeleted.name)


def user_registered(user: User, *, tenant_name: str | None) -> UserRegistered:
    """The event of a new user, with the tenant they joined or created."""
    return UserRegistered(
        user_id=user.id,
        tenant_id=user.tenant_id,
        email=user.email,
        full_name=user.full_name,
        role=user.role,
        tenant_name=tenant_name,
    )
