"""Business rules of users: profiles exist from registration on; preferences merge. Flushes only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.contracts.events import AccountDeleted, UserRegistered
from kibitz.kit.ids import new_id
from kibitz.kit.jwt import Principal
from kibitz.services.users import repository
from kibitz.services.users.directory import AuthAccounts, OwnAgents, Subscriptions
from kibitz.services.users.errors import ProfileNotFound, UnknownAgents
from kibitz.services.users.models import Profile
from kibitz.services.users.schemas import PreferencesPatch, ProfileUpdate

logger = structlog.get_logger("kibitz.users")


class UsersService:
    """Rules of the users domain."""

    def __init__(
        self, *, accounts: AuthAccounts, subscriptions: Subscriptions, agents: OwnAgents
    ) -> None:
        self.accounts = accounts
        self.subscriptions = subscriptions
        self.agents = agents

    async def _create_once(
        self,
        session: AsyncSession,
        *,
        auth_user_id: uuid.UUID,
        tenant_id: uuid.UUID,
        email: str,
        full_name: str | None,
    ) -> bool:
        now = datetime.now(UTC)
        created = await repository.add_profile_once(
            session,
            {
                "id": new_id(),
                "auth_user_id": auth_user_id,
                "tenant_id": tenant_id,
                "email": email,
                "full_name": full_name,
                "avatar_url": None,
                "preferences": {},
                "created_at": now,
                "updated_at": now,
            },
        )
        if created:
            logger.info("profile_created", auth_user_id=str(auth_user_id))
        return created

    async def profile(self, session: AsyncSession, *, principal: Principal) -> Profile:
        """The caller's profile; made from their auth account on first read if need be."""
        profile = await repository.get_profile(session, auth_user_id=principal.user_id)
        if profile is not None:
            return profile
        account = await self.accounts.account(principal.user_id)
        await self._create_once(
            session,
            auth_user_id=principal.user_id,
            tenant_id=principal.tenant_id,
            email=str(account.get("email") or ""),
            full_name=account.get("full_name"),
        )
        profile = await repository.get_profile(session, auth_user_id=principal.user_id)
        if profile is None:
            raise ProfileNotFound()
        return profile

    async def subscription(self, *, tenant_id: uuid.UUID) -> dict[str, Any] | None:
        """The tenant's plan as the profile shows it."""
        return await self.subscriptions.of(tenant_id)

    async def update(
        self,
        session: AsyncSession,
        *,
        principal: Principal,
        changes: ProfileUpdate,
        access_token: str,
    ) -> Profile:
        """Apply the given fields; preference keys are merged (null removes one); agent ids
        must be the caller's own agents (422 naming the others)."""
        if changes.preferences is not None:
            await self._check_own_agents(changes.preferences, access_token=access_token)
        profile = await self.profile(session, principal=principal)
        fields = changes.model_fields_set
        if "full_name" in fields:
            profile.full_name = changes.full_name
        if "avatar_url" in fields:
            profile.avatar_url = changes.avatar_url
        if "preferences" in fields and changes.preferences is not None:
            merged = dict(profile.preferences or {})
            patch = changes.preferences.model_dump(mode="json")
            for key in changes.preferences.model_fields_set:
                if patch[key] is None:
                    merged.pop(key, None)
                else:
                    merged[key] = patch[key]
            profile.preferences = merged
        profile.updated_at = datetime.now(UTC)
        await session.flush()
        return profile

    async def _check_own_agents(self, preferences: PreferencesPatch, *, access_token: str) -> None:
        chosen = {
            "default_agent_id": [preferences.default_agent_id]
            if preferences.default_agent_id is not None
            else [],
            "selected_agent_ids": list(preferences.selected_agent_ids or []),
        }
        every = {agent_id for ids in chosen.values() for agent_id in ids}
        not_owned = await self.agents.not_owned(every, access_token=access_token)
        for field, ids in chosen.items():
            foreign = [agent_id for agent_id in ids if agent_id in not_owned]
            if foreign:
                raise UnknownAgents(field, foreign)

    async def user_registered(self, session: AsyncSession, *, event: UserRegistered) -> None:
        """Create the new user's profile (a no-op if the first read made it already)."""
        await self._create_once(
            session,
            auth_user_id=event.user_id,
            tenant_id=event.tenant_id,
            email=event.email,
            full_name=event.full_name,
        )

    async def account_deleted(self, session: AsyncSession, *, event: AccountDeleted) -> None:
        """The account is gone: so are its profile and preferences."""
        await repository.delete_profile(session, auth_user_id=event.user_id)
        logger.info("profile_deleted", auth_user_id=str(event.user_id))
