"""Business rules of API keys: create (shown once), list, revoke, and exchange for a token."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.contracts.events import ApiKeyRevoked
from kibitz.kit.errors import Forbidden, Unprocessable
from kibitz.kit.events import Outbox
from kibitz.kit.ids import new_id
from kibitz.kit.jwt import ACCESS_TOKEN_SECONDS, Principal
from kibitz.services.auth.api_keys import repository
from kibitz.services.auth.api_keys.errors import (
    ApiKeyNeedsSession,
    ApiKeyNotFound,
    ExpiryInThePast,
    InvalidApiKey,
    TooManyApiKeys,
)
from kibitz.services.auth.api_keys.models import ApiKey
from kibitz.services.auth.models import User
from kibitz.services.auth.schemas import as_utc
from kibitz.services.auth.signing_keys.service import KeyRing

logger = structlog.get_logger("kibitz.auth.api_keys")

KEY_PREFIX = "kbz_"
# 32 random bytes (256 bits), URL-safe: 43 characters after the prefix.
_KEY_RANDOM_BYTES = 32
# `kbz_` + 8 characters (48 of the 256 bits): recognisable in a list, useless to an attacker.
_SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 8
# A bound on what one person can pile up; far above what any real use needs.
MAX_ACTIVE_KEYS_PER_USER = 100
# 60 s: `last_used_at` is a hint for people, not an audit log; one write a minute per key is
# plenty (the gateway exchanges a key at most about that often anyway).
_LAST_USED_RESOLUTION = timedelta(seconds=60)
_MANAGER_ROLES = ("owner", "admin")


def hash_api_key(key: str) -> str:
    """SHA-256 of a key: the key carries 256 random bits, so a fast hash is as strong as a slow
    one (there is nothing to guess), and the lookup costs microseconds on every exchange."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    """A fresh key: the recognisable prefix and 32 random bytes."""
    return KEY_PREFIX + secrets.token_urlsafe(_KEY_RANDOM_BYTES)


@dataclass(frozen=True)
class CreatedKey:
    """A stored key and the key itself (which is not stored)."""

    record: ApiKey
    key: str


@dataclass(frozen=True)
class KeyIdentity:
    """Who a key acts for, with an access token to act with."""

    key_id: uuid.UUID
    user: User
    access_token: str
    expires_in: int
    key_expires_at: datetime | None


class ApiKeyService:
    """Personal API keys: the request boundary commits; these flush."""

    def __init__(self, *, keys: KeyRing, outbox: Outbox) -> None:
        self.keys = keys
        self.outbox = outbox

    async def create(
        self,
        session: AsyncSession,
        *,
        principal: Principal,
        name: str,
        expires_at: datetime | None,
    ) -> CreatedKey:
        """A new key for the caller; the answer is the only place the key ever appears."""
        if principal.api_key_id is not None:
            # A leaked key must not be able to mint keys that outlive its revocation.
            raise ApiKeyNeedsSession()
        now = datetime.now(UTC)
        if expires_at is not None and as_utc(expires_at) <= now:
            raise ExpiryInThePast()
        active = await repository.count_active(session, user_id=principal.user_id, now=now)
        if active >= MAX_ACTIVE_KEYS_PER_USER:
            raise TooManyApiKeys(MAX_ACTIVE_KEYS_PER_USER)
        key = new_api_key()
        record = ApiKey(
            id=new_id(),
            user_id=principal.user_id,
            tenant_id=principal.tenant_id,
            name=name,
            prefix=key[:_SHOWN_PREFIX_LENGTH],
            key_hash=hash_api_key(key),
            created_at=now,
            expires_at=as_utc(expires_at) if expires_at is not None else None,
        )
        await repository.add(session, record)
        logger.info("api_key_created", key_id=str(record.id), user_id=str(principal.user_id))
        return CreatedKey(record=record, key=key)

    async def list_keys(
        self,
        session: AsyncSession,
        *,
        principal: Principal,
        whole_tenant: bool,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[tuple[ApiKey, str]], str | None]:
        """A page of the caller's keys, or (owners and admins) the whole tenant's."""
        if whole_tenant and principal.role not in _MANAGER_ROLES:
            raise Forbidden("Listing the tenant's API keys needs the owner or admin role.")
        before: uuid.UUID | None = None
        if cursor:
            try:
                before = uuid.UUID(cursor)
            except ValueError:
                message = "not a cursor this API returned"
                raise Unprocessable(
                    f"cursor: {message}",
                    extra={"errors": [{"field": "cursor", "message": message}]},
                ) from None
        rows = await repository.list_page(
            session,
            tenant_id=principal.tenant_id,
            user_id=None if whole_tenant else principal.user_id,
            limit=limit + 1,
            before=before,
        )
        next_cursor = str(rows[limit - 1][0].id) if len(rows) > limit else None
        return rows[:limit], next_cursor

    async def revoke(
        self, session: AsyncSession, *, principal: Principal, key_id: uuid.UUID
    ) -> None:
        """Revoke one of the caller's keys (owners and admins: any of the tenant's); 404 when
        there is no such working key the caller may see."""
        manager = principal.role in _MANAGER_ROLES
        record = await repository.get_in_tenant(
            session,
            key_id=key_id,
            tenant_id=principal.tenant_id,
            user_id=None if manager else principal.user_id,
        )
        if record is None:
            raise ApiKeyNotFound()
        if await repository.revoke(session, key_id=record.id, now=datetime.now(UTC)):
            # Same transaction: every gateway replica hears of it once the revocation commits.
            await self.outbox.add(
                session,
                ApiKeyRevoked(key_id=record.id, user_id=record.user_id, tenant_id=record.tenant_id),
            )
            logger.info("api_key_revoked", key_id=str(record.id), by_user_id=str(principal.user_id))

    async def revoke_all_of_user(
        self, session: AsyncSession, *, user_id: uuid.UUID, tenant_id: uuid.UUID
    ) -> int:
        """The user left the tenant (or their account goes): every key they hold there stops
        working, on every gateway replica at once (an `auth.api_key_revoked` each, in this
        transaction). Idempotent: keys already revoked are left, and announced no more. Whatever
        removes a user calls this in the transaction that removes them."""
        revoked = await repository.revoke_all_of_user(
            session, user_id=user_id, tenant_id=tenant_id, now=datetime.now(UTC)
        )
        for key_id in revoked:
            await self.outbox.add(
                session, ApiKeyRevoked(key_id=key_id, user_id=user_id, tenant_id=tenant_id)
            )
        if revoked:
            logger.info("api_keys_revoked_with_user", user_id=str(user_id), keys=len(revoked))
        return len(revoked)

    async def exchange(self, session: AsyncSession, *, key: str) -> KeyIdentity:
        """The user a working key acts for, with a fresh access token (401 otherwise)."""
        if not key.startswith(KEY_PREFIX):
            raise InvalidApiKey()
        now = datetime.now(UTC)
        found = await repository.find_usable(session, key_hash=hash_api_key(key), now=now)
        if found is None:
            raise InvalidApiKey()
        record, user = found
        last_used = record.last_used_at
        if last_used is None or now - as_utc(last_used) >= _LAST_USED_RESOLUTION:
            await repository.touch(session, key_id=record.id, now=now)
        # The user's current tenant and role, not the ones they had when the key was made.
        access_token = self.keys.signing_key.issue_access_token(
            user_id=user.id, tenant_id=user.tenant_id, role=user.role, api_key_id=record.id
        )
        return KeyIdentity(
            key_id=record.id,
            user=user,
            access_token=access_token,
            expires_in=ACCESS_TOKEN_SECONDS,
            key_expires_at=as_utc(record.expires_at) if record.expires_at else None,
        )
