"""Sessions: a login opens one (a refresh-token family; its id is the access tokens' `sid`), a
refresh spends its token for a new pair, a reused token or a logout ends it, and an ended
session's access tokens are refused in every service at once (stored and published). Flushes
within the caller's transaction, or opens its own short ones."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.db import Database
from kibitz.kit.events import Outbox
from kibitz.kit.ids import new_id
from kibitz.kit.jwt import ACCESS_TOKEN_SECONDS
from kibitz.kit.session_revocations import SessionRevoked
from kibitz.services.auth import repository as users_repository
from kibitz.services.auth.errors import InvalidRefreshToken
from kibitz.services.auth.models import RefreshToken, RefreshTokenFamily, SessionRevocation, User
from kibitz.services.auth.schemas import as_utc
from kibitz.services.auth.sessions import repository
from kibitz.services.auth.signing_keys.service import KeyRing

logger = structlog.get_logger("kibitz.auth")

REFRESH_REUSES = Counter(
    "kibitz_auth_refresh_token_reuses_total", "Spent refresh tokens presented again"
)


@dataclass(frozen=True)
class IssuedSession:
    """A user with a fresh access token and refresh token."""

    user: User
    access_token: str
    refresh_token: str
    expires_in: int = ACCESS_TOKEN_SECONDS


def hash_refresh_token(token: str) -> str:
    """SHA-256 of a refresh token: enough for 256 random bits, and a constant-cost lookup."""
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Refresh-token families, their tokens and the revocations of ended sessions."""

    def __init__(
        self, *, database: Database, keys: KeyRing, outbox: Outbox, refresh_token_seconds: int
    ) -> None:
        self.database = database
        self.keys = keys
        self.outbox = outbox
        self.refresh_token_seconds = refresh_token_seconds

    async def refresh(self, *, refresh_token: str) -> IssuedSession:
        """Spend the refresh token for a new pair; reusing a spent one revokes its family."""
        now = datetime.now(UTC)
        user: User | None = None
        async with self.database.transaction() as session:
            found = await repository.get_refresh_token(
                session, token_hash=hash_refresh_token(refresh_token)
            )
            if found is None:
                raise InvalidRefreshToken()
            token, family = found
            if family.revoked_at is not None:
                raise InvalidRefreshToken()
            if token.spent_at is None and as_utc(token.expires_at) <= now:
                raise InvalidRefreshToken()
            if token.spent_at is None and await repository.spend_refresh_token(
                session, token_id=token.id, now=now
            ):
                user = await users_repository.get_user(session, user_id=family.user_id)
                if user is None:
                    raise InvalidRefreshToken()
                new_token = await self._add_token(session, family_id=family.id, now=now)
            else:
                # A spent token came back: it leaked. End the whole session, newest token too,
                # and its access tokens in every service.
                await repository.revoke_refresh_token_family(
                    session, family_id=family.id, now=now, reason="reuse"
                )
                await self._revoke_session(session, family=family, now=now)
        # Raised after the block so the revocation commits.
        if user is None:
            logger.warning("refresh_token_reused", family_id=str(family.id))
            REFRESH_REUSES.inc()
            raise InvalidRefreshToken()
        return self.issue(user, new_token, family.id)

    async def logout(self, *, refresh_token: str) -> None:
        """Revoke the refresh token's family; unknown tokens are ignored (logout is idempotent)."""
        async with self.database.transaction() as session:
            found = await repository.get_refresh_token(
                session, token_hash=hash_refresh_token(refresh_token)
            )
            if found is not None:
                now = datetime.now(UTC)
                await repository.revoke_refresh_token_family(
                    session, family_id=found[1].id, now=now, reason="logout"
                )
                await self._revoke_session(session, family=found[1], now=now)

    async def revoke_all_of_user(
        self, session: AsyncSession, *, user_id: uuid.UUID, reason: str
    ) -> int:
        """End every session of the user: their refresh tokens stop at once, their access
        tokens in every service (stored and published, in this transaction)."""
        now = datetime.now(UTC)
        families = await repository.list_live_families(session, user_id=user_id)
        for family in families:
            await repository.revoke_refresh_token_family(
                session, family_id=family.id, now=now, reason=reason
            )
            await self._revoke_session(session, family=family, now=now)
        return len(families)

    async def _revoke_session(
        self, session: AsyncSession, *, family: RefreshTokenFamily, now: datetime
    ) -> None:
        """Refuse the session's access tokens everywhere until they expire: stored (for
        processes that ask) and published (for those that listen), in this transaction."""
        # The access tokens of the session were issued by now at the latest; 2 min of skew.
        expires_at = now + timedelta(seconds=ACCESS_TOKEN_SECONDS + 120)
        await repository.add_session_revocation(
            session,
            SessionRevocation(
                session_id=family.id, user_id=family.user_id, revoked_at=now, expires_at=expires_at
            ),
        )
        await self.outbox.add(
            session,
            SessionRevoked(session_id=family.id, user_id=family.user_id, expires_at=expires_at),
        )

    async def session_revocations(
        self, session: AsyncSession, *, since: datetime | None
    ) -> tuple[datetime, list[SessionRevocation]]:
        """The revocations whose tokens may still be live, newer than `since`; and now."""
        now = datetime.now(UTC)
        return now, await repository.list_session_revocations(session, now=now, since=since)

    async def start(self, session: AsyncSession, *, user_id: uuid.UUID) -> tuple[str, uuid.UUID]:
        """A new session: its first refresh token and its id (the access tokens' `sid`)."""
        now = datetime.now(UTC)
        family = RefreshTokenFamily(id=new_id(), user_id=user_id, created_at=now)
        await repository.add_refresh_token_family(session, family)
        return await self._add_token(session, family_id=family.id, now=now), family.id

    async def _add_token(
        self, session: AsyncSession, *, family_id: uuid.UUID, now: datetime
    ) -> str:
        token = secrets.token_urlsafe(32)
        await repository.add_refresh_token(
            session,
            RefreshToken(
                id=new_id(),
                family_id=family_id,
                token_hash=hash_refresh_token(token),
                created_at=now,
                expires_at=now + timedelta(seconds=self.refresh_token_seconds),
            ),
        )
        return token

    def issue(self, user: User, refresh_token: str, session_id: uuid.UUID) -> IssuedSession:
        """The pair a client gets: a new access token of the session beside its refresh token."""
        access_token = self.keys.signing_key.issue_access_token(
            user_id=user.id, tenant_id=user.tenant_id, role=user.role, session_id=session_id
        )
        return IssuedSession(user=user, access_token=access_token, refresh_token=refresh_token)
