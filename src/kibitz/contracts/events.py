"""Event payloads, versioned. Names are `<service>.<past-tense fact>`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field

from kibitz.kit.events import Event
from kibitz.kit.session_revocations import SessionRevoked

# Consumed by the kit itself (every process's JWT check), so defined there.
__all__ = ["SessionRevoked"]


class UserRegistered(Event):
    """A user signed up (into a new tenant, or into an existing one by invite)."""

    name: ClassVar[str] = "auth.user_registered"
    version: ClassVar[int] = 1

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    full_name: str | None = None
    role: str
    tenant_name: str | None = None


class PlanChanged(Event):
    """A tenant's plan (or its limits) changed; caches of plan limits must refresh."""

    name: ClassVar[str] = "tenants.plan_changed"
    version: ClassVar[int] = 1

    tenant_id: uuid.UUID
    plan: str
    limits: dict[str, Any]
    features: list[str]


class MessageCompleted(Event):
    """An agent reply finished (completed, failed or stopped); carries token usage for metering."""

    name: ClassVar[str] = "chat.message_completed"
    version: ClassVar[int] = 1

    message_id: uuid.UUID
    chat_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    agent_id: uuid.UUID | None = None
    status: str
    input_tokens: int = 0
    output_tokens: int = 0
    # The message-quota reservation to give back: set for a reply that failed before its
    # first token (a stopped reply, or one cut off mid-way, keeps its message counted).
    refunded_reservation: str | None = None
    # How much of that reservation to give back (None: all of it). A turn of several agents
    # reserves one message per reply under one key, and each reply gives back its own.
    refunded_amount: int | None = Field(default=None, ge=1)


class SubscriptionChanged(Event):
    """A tenant's paid subscription changed in Stripe; `plan` is the plan it now pays for (the
    free plan once it ended or went unpaid past the grace period). `sequence` grows with every
    change of one tenant, so a consumer ignores a change that arrives after a newer one."""

    name: ClassVar[str] = "billing.subscription_changed"
    version: ClassVar[int] = 1

    tenant_id: uuid.UUID
    plan: str
    status: str
    sequence: int
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False


class ApiKeyRevoked(Event):
    """A personal API key stopped working (revoked, or its user removed): every gateway replica
    drops what it remembers of the key at once."""

    name: ClassVar[str] = "auth.api_key_revoked"
    version: ClassVar[int] = 1

    key_id: uuid.UUID
    user_id: uuid.UUID
    tenant_id: uuid.UUID


class MemberRemoved(Event):
    """A user no longer belongs to a tenant: what they could do there as its member stops (their
    personal API keys are revoked by the auth service)."""

    name: ClassVar[str] = "tenants.member_removed"
    version: ClassVar[int] = 1

    tenant_id: uuid.UUID
    user_id: uuid.UUID


class AccountDeleted(Event):
    """A person's account is gone (they deleted it, or were removed from their tenant, which
    ends the account since a user belongs to one tenant). Their sessions and API keys were
    revoked in the same transaction; every service erases what it holds of them: tenants their
    membership, users the profile, chat their chats and messages, agents their agents,
    knowledge their private collections with documents and vectors."""

    name: ClassVar[str] = "auth.account_deleted"
    version: ClassVar[int] = 1

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    # "deleted" (by the person) or "removed" (from the tenant by an owner or admin).
    reason: str
