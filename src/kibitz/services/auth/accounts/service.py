"""Ending an account: sessions and API keys revoked, credentials deleted, and
`auth.account_deleted` published in the same transaction, so every service erases the person's
data. Flushes only; `delete_own` runs its own transactions (the password check hashes between)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.contracts.events import AccountDeleted
from kibitz.kit.db import Database
from kibitz.kit.errors import GatewayTimeout, ServiceUnavailable
from kibitz.kit.events import Outbox
from kibitz.kit.http import ServiceClient
from kibitz.kit.jwt import Principal
from kibitz.kit.passwords import verify_password
from kibitz.services.auth import repository
from kibitz.services.auth.accounts.errors import (
    AccountNeedsPerson,
    LastOwner,
    PasswordNotConfirmed,
    RecentSignInRequired,
)
from kibitz.services.auth.api_keys.service import ApiKeyService
from kibitz.services.auth.errors import TenantsUnavailable
from kibitz.services.auth.schemas import as_utc
from kibitz.services.auth.service import AuthService
from kibitz.services.auth.sessions import repository as sessions_repository

logger = structlog.get_logger("kibitz.auth.accounts")

# 10 min: long enough to find the button after signing in, short enough that a session left
# open on a shared computer cannot delete an account without a password.
RECENT_SIGN_IN = timedelta(minutes=10)


class AccountService:
    """Ends accounts."""

    def __init__(
        self,
        *,
        database: Database,
        auth: AuthService,
        api_keys: ApiKeyService,
        outbox: Outbox,
        tenants: ServiceClient | None,
    ) -> None:
        self.database = database
        self.auth = auth
        self.api_keys = api_keys
        self.outbox = outbox
        self.tenants = tenants

    async def end(
        self,
        session: AsyncSession,
        *,
        user_id: uuid.UUID,
        reason: str,
        tenant_id: uuid.UUID | None = None,
    ) -> bool:
        """End the account at once on every replica and announce it; False when there is no
        such account (in `tenant_id`, when given) any more: idempotent, so a redelivered event
        changes nothing."""
        user = await repository.get_user(session, user_id=user_id)
        if user is None or (tenant_id is not None and user.tenant_id != tenant_id):
            return False
        await self.auth.sessions.revoke_all_of_user(session, user_id=user.id, reason=reason)
        await self.api_keys.revoke_all_of_user(session, user_id=user.id, tenant_id=user.tenant_id)
        await repository.delete_user(session, user_id=user.id)
        await self.outbox.add(
            session, AccountDeleted(user_id=user.id, tenant_id=user.tenant_id, reason=reason)
        )
        logger.info("account_ended", user_id=str(user.id), reason=reason)
        return True

    async def delete_own(self, *, principal: Principal, password: str | None) -> None:
        """The caller deletes their account: the password confirms it (without one, a sign-in
        within 10 minutes); 409 when they alone own a tenant others still belong to."""
        if principal.api_key_id is not None:
            raise AccountNeedsPerson()
        async with self.database.transaction() as session:
            user = await self.auth.get_user(session, user_id=principal.user_id)
            family = (
                await sessions_repository.get_family(
                    session, family_id=uuid.UUID(principal.session_id)
                )
                if principal.session_id
                else None
            )
        if user.password_hash is not None:
            if not await verify_password(user.password_hash, password or ""):
                raise PasswordNotConfirmed()
        elif family is None or datetime.now(UTC) - as_utc(family.created_at) > RECENT_SIGN_IN:
            raise RecentSignInRequired()
        await self._check_departure(user.id)
        async with self.database.transaction() as session:
            await self.end(session, user_id=user.id, reason="deleted")

    async def _check_departure(self, user_id: uuid.UUID) -> None:
        if self.tenants is None:
            return
        try:
            response = await self.tenants.request(
                "GET", f"/tenants/internal/memberships/{user_id}/departure"
            )
        except (ServiceUnavailable, GatewayTimeout) as exc:
            raise TenantsUnavailable() from exc
        if response.status_code == 409:
            detail = _problem_detail(response)
            raise LastOwner(detail)
        if response.status_code != 204:
            logger.warning("tenants_departure_check_failed", status=response.status_code)
            raise TenantsUnavailable()


def _problem_detail(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) and detail else None
