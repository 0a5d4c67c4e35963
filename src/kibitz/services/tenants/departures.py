"""Members leaving a tenant: removed by an owner or admin (`tenants.member_removed`, upon which
auth ends their account), or gone with their deleted account (`auth.account_deleted`). Flushes
only."""

from __future__ import annotations

import uuid
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.contracts.events import MemberRemoved
from kibitz.kit.events import Outbox
from kibitz.kit.jwt import Principal
from kibitz.services.tenants import repository
from kibitz.services.tenants.errors import (
    CannotRemoveYourself,
    LastOwner,
    MemberNotFound,
    RoleRequired,
)

logger = structlog.get_logger("kibitz.tenants")

ROLE_OWNER = "owner"


class Roles(Protocol):
    """Who may manage the tenant (TenantsService)."""

    async def role_of(self, session: AsyncSession, *, principal: Principal) -> str: ...

    async def require_manager(self, session: AsyncSession, *, principal: Principal) -> None: ...


class Departures:
    """Rules of members leaving."""

    def __init__(self, *, outbox: Outbox, roles: Roles) -> None:
        self.outbox = outbox
        self.roles = roles

    async def remove(
        self, session: AsyncSession, *, principal: Principal, user_id: uuid.UUID
    ) -> None:
        """An owner or admin removes someone from their tenant (admins: not an owner); 404 for
        anyone not in it. `tenants.member_removed` goes out in this transaction: auth then
        ends the person's account (sessions, API keys, data) on every replica."""
        await self.roles.require_manager(session, principal=principal)
        membership = await repository.get_membership(session, user_id=user_id)
        if membership is None or membership.tenant_id != principal.tenant_id:
            raise MemberNotFound()
        if user_id == principal.user_id:
            raise CannotRemoveYourself()
        # Only an owner removes an owner; never themselves, so an owner always remains.
        if membership.role == ROLE_OWNER and (
            await self.roles.role_of(session, principal=principal) != ROLE_OWNER
        ):
            raise RoleRequired(ROLE_OWNER)
        await repository.remove_membership(session, user_id=user_id)
        await self.outbox.add(
            session, MemberRemoved(tenant_id=membership.tenant_id, user_id=user_id)
        )
        logger.info(
            "member_removed",
            tenant_id=str(membership.tenant_id),
            user_id=str(user_id),
            by_user_id=str(principal.user_id),
        )

    async def check(self, session: AsyncSession, *, user_id: uuid.UUID) -> None:
        """409 when the user is the only owner of a tenant others still belong to (they would
        leave it without anyone who may manage it)."""
        membership = await repository.get_membership(session, user_id=user_id)
        if membership is None or membership.role != ROLE_OWNER:
            return
        tenant_id = membership.tenant_id
        if await repository.count_owners(session, tenant_id=tenant_id) <= 1 and (
            await repository.count_members(session, tenant_id=tenant_id) > 1
        ):
            raise LastOwner()

    async def forget(self, session: AsyncSession, *, user_id: uuid.UUID) -> None:
        """The user's account is gone: so is their membership (idempotent). Should they have
        been the last owner after all (someone joined after auth checked), the longest-standing
        admin, else member, becomes owner, so the tenant is never left unmanaged."""
        membership = await repository.get_membership(session, user_id=user_id)
        if membership is None:
            return
        await repository.remove_membership(session, user_id=user_id)
        tenant_id = membership.tenant_id
        if membership.role == ROLE_OWNER and not await repository.count_owners(
            session, tenant_id=tenant_id
        ):
            heir = await repository.longest_standing_member(session, tenant_id=tenant_id)
            if heir is not None:
                heir.role = ROLE_OWNER
                await session.flush()
                logger.warning(
                    "owner_succeeded", tenant_id=str(tenant_id), user_id=str(heir.user_id)
                )
        logger.info("member_forgotten", tenant_id=str(tenant_id), user_id=str(user_id))
