"""Every query of single sign-on; scoped by tenant, by user, or by a provider's own key."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.auth.models import User
from kibitz.services.auth.sso.models import (
    LinkedIdentity,
    SpentLoginState,
    TenantEmailDomain,
    TenantIdentityProvider,
)


async def get_identity(
    session: AsyncSession, *, provider_id: str, subject: str
) -> LinkedIdentity | None:
    """The identity this provider knows by this subject."""
    result = await session.execute(
        select(LinkedIdentity).where(
            LinkedIdentity.provider_id == provider_id, LinkedIdentity.subject == subject
        )
    )
    return result.scalar_one_or_none()


async def add_identity(session: AsyncSession, identity: LinkedIdentity) -> None:
    """Link an identity (flushes, so a second link of the same subject raises here)."""
    session.add(identity)
    await session.flush()


async def list_identities(session: AsyncSession, *, user_id: uuid.UUID) -> list[LinkedIdentity]:
    """The user's linked identities, oldest first."""
    result = await session.execute(
        select(LinkedIdentity)
        .where(LinkedIdentity.user_id == user_id)
        .order_by(LinkedIdentity.created_at, LinkedIdentity.id)
    )
    return list(result.scalars())


async def count_identities(session: AsyncSession, *, user_id: uuid.UUID) -> int:
    """How many identities the user has linked."""
    result = await session.execute(
        select(func.count()).select_from(LinkedIdentity).where(LinkedIdentity.user_id == user_id)
    )
    return int(result.scalar_one())


async def get_tenant_provider(
    session: AsyncSession, *, tenant_id: uuid.UUID
) -> TenantIdentityProvider | None:
    """The tenant's own identity provider."""
    result = await session.execute(
        select(TenantIdentityProvider).where(TenantIdentityProvider.tenant_id == tenant_id)
    )
    return result.scalar_one_or_none()


async def get_tenant_provider_by_id(
    session: AsyncSession, *, provider_id: uuid.UUID
) -> TenantIdentityProvider | None:
    """A tenant's identity provider by its id (public: it is in the sign-in URL)."""
    return await session.get(TenantIdentityProvider, provider_id)


async def add_tenant_provider(session: AsyncSession, provider: TenantIdentityProvider) -> None:
    """Insert the tenant's provider (flushes: a second one for the tenant raises here)."""
    session.add(provider)
    await session.flush()


async def list_domains(session: AsyncSession, *, provider_id: uuid.UUID) -> list[str]:
    """The email domains of a tenant's provider, sorted."""
    result = await session.execute(
        select(TenantEmailDomain.domain)
        .where(TenantEmailDomain.provider_id == provider_id)
        .order_by(TenantEmailDomain.domain)
    )
    return list(result.scalars())


async def domains_owned_elsewhere(
    session: AsyncSession, *, domains: list[str], tenant_id: uuid.UUID
) -> list[str]:
    """Which of these domains another tenant has claimed."""
    if not domains:
        return []
    result = await session.execute(
        select(TenantEmailDomain.domain).where(
            TenantEmailDomain.domain.in_(domains), TenantEmailDomain.tenant_id != tenant_id
        )
    )
    return sorted(result.scalars())


async def replace_domains(
    session: AsyncSession, *, provider: TenantIdentityProvider, domains: list[str]
) -> None:
    """The provider's domains become exactly these (flushes: a domain taken meanwhile raises)."""
    await session.execute(
        delete(TenantEmailDomain).where(
            TenantEmailDomain.provider_id == provider.id,
            TenantEmailDomain.tenant_id == provider.tenant_id,
        )
    )
    for domain in domains:
        session.add(
            TenantEmailDomain(domain=domain, provider_id=provider.id, tenant_id=provider.tenant_id)
        )
    await session.flush()


async def provider_for_domain(
    session: AsyncSession, *, domain: str
) -> TenantIdentityProvider | None:
    """The tenant provider that claimed this email domain."""
    result = await session.execute(
        select(TenantIdentityProvider)
        .join(TenantEmailDomain, TenantEmailDomain.provider_id == TenantIdentityProvider.id)
        .where(TenantEmailDomain.domain == domain)
    )
    return result.scalar_one_or_none()


async def delete_tenant_provider(session: AsyncSession, *, tenant_id: uuid.UUID) -> bool:
    """Remove the tenant's provider, its domains and the identities linked through it."""
    provider = await get_tenant_provider(session, tenant_id=tenant_id)
    if provider is None:
        return False
    await session.execute(
        delete(TenantEmailDomain).where(TenantEmailDomain.provider_id == provider.id)
    )
    await session.execute(
        delete(LinkedIdentity).where(LinkedIdentity.provider_id == str(provider.id))
    )
    await session.delete(provider)
    await session.flush()
    return True


async def spend_state(
    session: AsyncSession, *, state_hash: str, expires_at: datetime, now: datetime
) -> None:
    """Record a sign-in's state as used (flushes: a state used before raises here)."""
    # Spent states past their cookie's age can never come back: forget them.
    await session.execute(delete(SpentLoginState).where(SpentLoginState.expires_at < now))
    session.add(SpentLoginState(state_hash=state_hash, expires_at=expires_at))
    await session.flush()


async def set_password_hash(
    session: AsyncSession, *, user_id: uuid.UUID, password_hash: str | None
) -> None:
    """Set (or with None remove) the user's password."""
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(password_hash=password_hash)
        .execution_options(synchronize_session=False)
    )
